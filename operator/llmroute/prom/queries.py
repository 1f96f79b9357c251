"""Default PromQL over the proxy's metrics (see ARCHITECTURE.md), batched by the ``route`` label so the
number of queries per cycle does not grow with the number of routes; and per-route overrides."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmroute.core.observed import LoadKey
from llmroute.spec.route import LLMRoute

# name -> PromQL returning one sample per route (or per route+upstream)
RATE_WINDOW = "1m"


def _rate(metric: str, selector: str = "", window: str = RATE_WINDOW) -> str:
    return f"rate({metric}{{{selector}}}[{window}])"


def any_of(values: Sequence[str]) -> str:
    r"""The body of a PromQL regex matcher's double-quoted string that matches exactly one of ``values``:
    regex metacharacters escaped for RE2 (``re.escape``), then every backslash doubled, since the string
    is read with Go's escapes first (``re.escape`` writes ``llm\-prod``, and ``"\-"`` is not a valid
    PromQL string: the query would be a 400)."""
    return "|".join(re.escape(v) for v in values).replace("\\", "\\\\")


def load_query(metric: LoadKey, rate_window: str = RATE_WINDOW, routes: Sequence[str] | None = None) -> str:
    """The per-route load series of ``metric`` (``rps``, ``inflight`` or ``tokens``), for every route or
    only ``routes`` (``namespace/name`` keys)."""
    selector = f'route=~"{any_of(routes)}"' if routes else ""
    if metric == "rps":
        return f"sum by (route) ({_rate('llmroute_requests_total', selector, rate_window)})"
    if metric == "inflight":
        return f"sum by (route) (llmroute_inflight_requests{{{selector}}})"
    if metric == "tokens":
        return f"sum by (route) ({_rate('llmroute_tokens_total', selector, rate_window)})"
    raise ValueError(f"{metric} is not a batched load metric")


UPSTREAM_LOAD: dict[str, tuple[str, str]] = {
    # signal -> (aggregation over proxy replicas, metric)
    "inflight": ("sum", "llmroute_upstream_inflight_requests"),
    "queue_depth": ("max", "llmroute_upstream_queue_depth"),
    "kv_cache_usage": ("max", "llmroute_upstream_kv_cache_usage"),
    "quota_remaining_ratio": ("min", "llmroute_upstream_quota_remaining_ratio"),
}


def upstream_load_query() -> str:
    """One query for every upstream's load signals: each metric aggregated over the proxy replicas (in-flight
    summed, queue and KV cache the largest reading, quota the smallest) and tagged with a ``signal``
    label, joined with ``or``."""
    parts = [
        f'label_replace({agg} by (route, upstream) ({metric}), "signal", "{signal}", "", "")'
        for signal, (agg, metric) in UPSTREAM_LOAD.items()
    ]
    return " or ".join(parts)


def batched(window_seconds: int = 120, rate_window: str = RATE_WINDOW) -> dict[str, str]:
    """The batched queries of one metrics cycle. ``window_seconds`` is the failover evaluation window,
    ``rate_window`` the range of the load rates (1m: a minute's average, as the history is per minute)."""
    w = f"{window_seconds}s"
    req = "llmroute_requests_total"
    errors = 'code=~"5..|0"'  # 0: the proxy's code for connection failures and timeouts
    has_upstream = 'upstream!~"|none"'
    attempts = "llmroute_proxy_upstream_attempts_total"
    probes = "llmroute_proxy_upstream_probes_total"
    attempt_errors = 'outcome=~"error|timeout|status_5..|status_429"'
    return {
        "rps": load_query("rps", rate_window),
        "inflight": load_query("inflight", rate_window),
        "tokens": load_query("tokens", rate_window),
        "error_rate": f"sum by (route) ({_rate(req, errors, w)}) / sum by (route) ({_rate(req, '', w)}) > -1",
        "latency_p95": (
            "histogram_quantile(0.95, sum by (route, le) "
            f"({_rate('llmroute_request_duration_seconds_bucket', '', w)}))"
        ),
        # upstream health counts every attempt (a failed attempt retried elsewhere still counts) and every
        # active probe of an idle upstream; the hub adds the two (PromQL cannot sum across metric names
        # without a name clash)
        "upstream_requests": f"sum by (route, upstream) (increase({attempts}[{w}]))",
        "upstream_errors": f"sum by (route, upstream) (increase({attempts}{{{attempt_errors}}}[{w}]))",
        "probe_requests": f"sum by (route, upstream) (increase({probes}[{w}]))",
        "probe_errors": f"sum by (route, upstream) (increase({probes}{{{attempt_errors}}}[{w}]))",
        # the documented contract alone (no attempt or probe counters): what clients got, per upstream
        "fallback_requests": f"sum by (route, upstream) (increase({req}{{{has_upstream}}}[{w}]))",
        "fallback_errors": f"sum by (route, upstream) (increase({req}{{{has_upstream},{errors}}}[{w}]))",
        "upstream_latency": (
            "histogram_quantile(0.95, sum by (route, upstream, le) "
            f"({_rate('llmroute_request_duration_seconds_bucket', has_upstream, w)}))"
        ),
        # 1 where every proxy replica currently accepts the upstream, 0 where all eject it
        "upstream_healthy": "avg by (route, upstream) (llmroute_upstream_healthy)",
        # per-upstream load from the proxies' balancer signals, one series per (route, upstream, signal)
        "upstream_load": upstream_load_query(),
        "ratelimited": f"sum by (route) ({_rate('llmroute_ratelimited_total', '', rate_window)})",
        # how many samples a request counter has in the rate window: fewer than 2 and no rate exists
        "samples": f"max by (route) (count_over_time({req}[{rate_window}]))",
    }


@dataclass(frozen=True)
class RouteQueries:
    """Per-route PromQL overrides (with ``$route``/``$namespace`` substituted); each returns one number,
    or one per ``upstream`` label for the upstream queries."""

    load: str | None = None
    inflight: str | None = None
    tokens: str | None = None
    error_rate: str | None = None
    latency_p95: str | None = None
    upstream_error_rate: str | None = None
    upstream_latency: str | None = None
    upstream_requests: str | None = None

    def any(self) -> bool:
        return any(v is not None for v in self.__dict__.values())


def route_key(route: LLMRoute) -> str:
    return f"{route.metadata.namespace}/{route.metadata.name}"


def overrides(route: LLMRoute) -> RouteQueries:
    q = route.spec.prometheus.queries

    def sub(text: str | None) -> str | None:
        if text is None:
            return None
        return text.replace("$route", route_key(route)).replace("$namespace", route.metadata.namespace)

    load = q.load
    if route.spec.scaling.metric.type == "Custom":
        load = route.spec.scaling.metric.query
    return RouteQueries(
        load=sub(load),
        inflight=sub(q.inflight),
        tokens=sub(q.tokens),
        error_rate=sub(q.error_rate),
        latency_p95=sub(q.latency_p95),
        upstream_error_rate=sub(q.upstream_error_rate),
        upstream_latency=sub(q.upstream_latency),
        upstream_requests=sub(q.upstream_requests),
    )
