"""The llmroute dashboard's panels as plain data: title, unit and PromQL of every query.

Queries use the dashboard's variables: ``$route`` (a regex of ``<namespace>/<name>`` values, multi-select),
``$__rate_interval`` (Grafana's: at least four scrape intervals). :func:`concrete` substitutes them, so the
tests and the demo's picture run exactly these queries. Metric names are the proxy's
(``proxy/metrics.py``), the operator's own (``controller/opmetrics.py``) and the per-route gauges the
operator exports (``llmroute_route_*``, listed in :data:`ROUTE_GAUGES`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["timeseries", "stat", "state"]

# per-route gauges of the operator (name -> labels and meaning); the alert rules read them too
ROUTE_GAUGES: dict[str, str] = {
    "llmroute_route_alert_threshold": "{route, alert}: the route's spec.alerts threshold (req/s, s, ratio)",
    "llmroute_route_condition": "{route, type, status}: 1 for the condition's current status, else 0",
    "llmroute_route_replicas": "{route, kind=desired|current|min|max|forecast}: replica counts",
    "llmroute_route_load": "{route}: the measured load, in the unit of spec.scaling.metric",
    "llmroute_route_load_forecast": "{route}: the predicted load leadTimeSeconds ahead, same unit",
    "llmroute_route_utilization": "{route}: load / (running replicas x targetPerReplica)",
    "llmroute_route_upstream_state": "{route, upstream, group, state}: 1 for the current state, else 0",
    "llmroute_route_active_group": "{route}: the upstream group the proxies are told to use",
    "llmroute_route_limit_requests_per_minute": "{route, tier, scope=global|replica}: effective limit",
    "llmroute_route_limit_tokens_per_minute": "{route, tier, scope=global|replica}: effective limit",
    "llmroute_route_shed_factor": "{route, tier}: multiplier on the tier's limits, 1 = not shed",
}


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    """One panel; ``width`` in Grafana's 24-column grid; ``mappings`` (value -> text, colour) for state
    panels; ``main``: drawn in the demo's picture too."""

    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    kind: Kind = "timeseries"
    width: int = 12
    mappings: tuple[tuple[int, str, str], ...] = ()
    main: bool = False


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


ROUTE = 'route=~"$route"'
ERRORS = 'code=~"5..|0"'  # 0: the proxy's code for connection failures and timeouts


def _rate(metric: str, *matchers: str) -> str:
    return f"rate({metric}{{{', '.join((ROUTE, *matchers))}}}[$__rate_interval])"


def _quantiles(metric: str, by: str = "le") -> tuple[Query, ...]:
    bucket = _rate(f"{metric}_bucket")
    return tuple(
        Query(f"histogram_quantile({q}, sum by ({by}) ({bucket}))", f"p{int(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    )


def _ratio(part: str, whole: str, by: str) -> str:
    """``part / whole`` by ``by`` that reads 0, not "no data", while ``part`` has no series yet."""
    return f"(sum by ({by}) ({part}) or 0 * sum by ({by}) ({whole})) / sum by ({by}) ({whole})"


def _proxy_pods(expr: str) -> str:
    """``expr`` (one series per scrape target) for the proxies of the selected routes only: every proxy
    exports ``llmroute_proxy_config_info`` with its route."""
    return f"{expr} and on (instance, job) llmroute_proxy_config_info{{{ROUTE}}}"


def _containers(metric: str, *, rate: bool) -> str:
    """A cAdvisor (kubelet) metric of the proxies' ``proxy`` containers, where cAdvisor is scraped."""
    series = f'{metric}{{container="proxy"}}'
    if rate:
        series = f"rate({series}[$__rate_interval])"
    return f"sum by (namespace, pod) ({series}) and on (namespace, pod) llmroute_proxy_config_info{{{ROUTE}}}"


def _threshold(alert: str) -> str:
    """The route's ``spec.alerts`` threshold for ``alert``, as the operator exports it."""
    return f'max by (route) (llmroute_route_alert_threshold{{{ROUTE}, alert="{alert}"}})'


def _per_replica(metric: str) -> str:
    return f'max by (route, tier) ({metric}{{{ROUTE}, scope="replica"}})'


def _operator(expr: str) -> str:
    """``expr`` (one series per scrape target) for the operator only: the target exporting its metrics."""
    return f"{expr} and on (instance, job) llmroute_operator_routes"


REQUESTS = _rate("llmroute_requests_total")
FAILED = _rate("llmroute_requests_total", ERRORS)
UPSTREAM_SET = 'upstream!~"|none"'  # answers that came from an upstream (not 429s or cache hits)
HEALTH = (
    (0, "Healthy", "green"),
    (1, "Recovering", "yellow"),
    (2, "Unhealthy", "red"),
    (3, "Unknown", "gray"),
)

OVERVIEW = Row(
    "Overview",
    (
        Panel(
            "Requests/s",
            "Requests answered by the proxies, all tiers.",
            "reqps",
            (Query(f"sum({REQUESTS})", "requests/s"),),
            "stat",
            6,
        ),
        Panel(
            "Error ratio",
            "Share of requests answered 5xx or not at all (code 0).",
            "percentunit",
            (
                Query(
                    f"(sum({FAILED}) or 0 * sum({REQUESTS})) / sum({REQUESTS})",
                    "errors",
                ),
            ),
            "stat",
            6,
        ),
        Panel(
            "p95 latency",
            "95th percentile of the request duration.",
            "s",
            (_quantiles("llmroute_request_duration_seconds")[1],),
            "stat",
            6,
        ),
        Panel(
            "Proxies",
            "Proxy processes reporting metrics.",
            "none",
            (Query(f"count(llmroute_proxy_config_info{{{ROUTE}}})", "proxies"),),
            "stat",
            6,
        ),
    ),
)
TRAFFIC = Row(
    "Traffic",
    (
        Panel(
            "Requests/s by tier and code",
            "Answers by client tier and HTTP status (0: no answer from any upstream).",
            "reqps",
            (Query(f"sum by (tier, code) ({REQUESTS})", "{{tier}} {{code}}"),),
            main=True,
        ),
        Panel(
            "Error rate",
            "Share of requests answered 5xx or not at all, per route, and the route's alert threshold.",
            "percentunit",
            (
                Query(_ratio(FAILED, REQUESTS, "route"), "{{route}}"),
                Query(_threshold("HighErrorRate"), "{{route}} alert threshold"),
            ),
            main=True,
        ),
        Panel(
            "Latency",
            "Request duration percentiles (all tiers and upstreams) and the p95 alert threshold.",
            "s",
            (
                *_quantiles("llmroute_request_duration_seconds"),
                Query(_threshold("HighLatencyP95"), "{{route}} p95 alert threshold"),
            ),
            main=True,
        ),
        Panel(
            "Time to first token",
            "Time to the first response byte: the first token of a stream, the whole answer otherwise.",
            "s",
            _quantiles("llmroute_time_to_first_byte_seconds"),
        ),
        Panel(
            "Tokens/s by tier",
            "Upstream tokens in (prompt) and out (completion), by client tier.",
            "short",
            (
                Query(
                    f"sum by (tier, direction) ({_rate('llmroute_tokens_total')})", "{{tier}} {{direction}}"
                ),
            ),
        ),
        Panel(
            "Rate-limited and shed requests by tier",
            "429s from llmroute's limits and 503s from the priority admission queue, by tier.",
            "reqps",
            (
                Query(f"sum by (tier) ({_rate('llmroute_ratelimited_total')})", "{{tier}} rate-limited"),
                Query(f"sum by (tier) ({_rate('llmroute_proxy_shed_total')})", "{{tier}} shed"),
            ),
            main=True,
        ),
        Panel(
            "Cache hit ratio",
            "Share of cacheable requests answered from the proxies' cache.",
            "percentunit",
            (
                Query(
                    _ratio(
                        _rate("llmroute_requests_total", 'cache="hit"'),
                        _rate("llmroute_requests_total", 'cache=~"hit|miss"'),
                        "route",
                    ),
                    "{{route}}",
                ),
            ),
        ),
        Panel(
            "In flight",
            "Requests being served, and requests queued for an admission slot.",
            "short",
            (
                Query(f"sum by (route) (llmroute_inflight_requests{{{ROUTE}}})", "{{route}} in flight"),
                Query(f"sum by (route) (llmroute_proxy_admission_waiting{{{ROUTE}}})", "{{route}} queued"),
            ),
        ),
    ),
)
UPSTREAMS = Row(
    "Upstreams and failover",
    (
        Panel(
            "Requests/s by upstream",
            "Answers by the upstream that produced them: failover shows as traffic moving between groups.",
            "reqps",
            (
                Query(
                    f"sum by (upstream) ({_rate('llmroute_requests_total', UPSTREAM_SET)})",
                    "{{upstream}}",
                ),
            ),
            main=True,
        ),
        Panel(
            "Upstream attempts by outcome",
            "Every attempt the proxies made, retries included: ok, status_<code>, timeout, error.",
            "reqps",
            (
                Query(
                    f"sum by (upstream, outcome) ({_rate('llmroute_proxy_upstream_attempts_total')})",
                    "{{upstream}} {{outcome}}",
                ),
            ),
            main=True,
        ),
        Panel(
            "Upstream health (operator)",
            "The operator's failover state of each upstream.",
            "none",
            (
                Query(
                    " + ".join(
                        f"{value} * max by (route, upstream) "
                        f'(llmroute_route_upstream_state{{{ROUTE}, state="{state}"}})'
                        for value, state, _ in HEALTH
                    ),
                    "{{upstream}}",
                ),
            ),
            "state",
            mappings=HEALTH,
        ),
        Panel(
            "Upstream accepted by the proxies",
            "1 while every proxy accepts the upstream, 0 while all have ejected it (passive health).",
            "none",
            (Query(f"min by (upstream) (llmroute_upstream_healthy{{{ROUTE}}})", "{{upstream}}"),),
            "state",
            mappings=((1, "accepted", "green"), (0, "ejected", "red")),
        ),
        Panel(
            "Active upstream group",
            "The upstream group the operator tells the proxies to use (0: the primary).",
            "none",
            (Query(f"max by (route) (llmroute_route_active_group{{{ROUTE}}})", "{{route}}"),),
        ),
        Panel(
            "Conditions",
            "The route's KEP-1623 conditions that are True.",
            "none",
            (
                Query(
                    f'max by (route, type) (llmroute_route_condition{{{ROUTE}, status="True"}})',
                    "{{route}} {{type}}",
                ),
            ),
            "state",
            mappings=((1, "True", "orange"), (0, "False", "transparent")),
        ),
    ),
)
SCALING = Row(
    "Scaling",
    (
        Panel(
            "Replicas",
            "Desired (the operator's decision), current (the Deployment's), bounds, the forecast's replicas, "
            "and the proxies reporting metrics.",
            "none",
            (
                Query(f"max by (route, kind) (llmroute_route_replicas{{{ROUTE}}})", "{{route}} {{kind}}"),
                Query(
                    f"count by (route) (llmroute_proxy_config_info{{{ROUTE}}})", "{{route}} proxies reporting"
                ),
            ),
            main=True,
        ),
        Panel(
            "Load and forecast",
            "The load the operator scales on, its forecast, the proxies' requests/s and the "
            "request-rate alert threshold.",
            "short",
            (
                Query(f"max by (route) (llmroute_route_load{{{ROUTE}}})", "{{route}} load"),
                Query(f"max by (route) (llmroute_route_load_forecast{{{ROUTE}}})", "{{route}} forecast"),
                Query(f"sum by (route) ({REQUESTS})", "{{route}} requests/s"),
                Query(_threshold("HighRequestRate"), "{{route}} alert threshold"),
            ),
            main=True,
        ),
        Panel(
            "Utilization",
            "Load over (running replicas x targetPerReplica): above 100 % the route needs more replicas.",
            "percentunit",
            (Query(f"max by (route) (llmroute_route_utilization{{{ROUTE}}})", "{{route}}"),),
        ),
        Panel(
            "Per-replica limits",
            "Each tier's effective limit on one proxy replica (the global limit divided across replicas).",
            "short",
            (
                Query(
                    _per_replica("llmroute_route_limit_requests_per_minute"),
                    "{{route}} {{tier}} requests/min",
                ),
                Query(
                    _per_replica("llmroute_route_limit_tokens_per_minute"),
                    "{{route}} {{tier}} tokens/min",
                ),
            ),
        ),
        Panel(
            "Shed factor by tier",
            "Multiplier adaptive shedding applies to a tier's limits (1: not shed).",
            "percentunit",
            (Query(f"min by (route, tier) (llmroute_route_shed_factor{{{ROUTE}}})", "{{route}} {{tier}}"),),
        ),
    ),
)
RESOURCES = Row(
    "Proxy resources",
    (
        Panel(
            "Proxy CPU",
            "CPU cores used by each proxy: the process's own figure, and the container's where cAdvisor "
            "is scraped.",
            "short",
            (
                Query(_proxy_pods("rate(process_cpu_seconds_total[$__rate_interval])"), "{{instance}}"),
                Query(
                    _containers("container_cpu_usage_seconds_total", rate=True),
                    "{{pod}} (container)",
                ),
            ),
        ),
        Panel(
            "Proxy memory",
            "Resident memory of each proxy process, and the container's working set where cAdvisor is "
            "scraped.",
            "bytes",
            (
                Query(_proxy_pods("process_resident_memory_bytes"), "{{instance}}"),
                Query(_containers("container_memory_working_set_bytes", rate=False), "{{pod}} (container)"),
            ),
        ),
    ),
)
OPERATOR = Row(
    "Operator",
    (
        Panel(
            "Reconcile duration",
            "Duration of one route's reconcile cycle (all routes).",
            "s",
            tuple(
                Query(
                    f"histogram_quantile({q}, sum by (le) "
                    "(rate(llmroute_operator_reconcile_duration_seconds_bucket[$__rate_interval])))",
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ),
        ),
        Panel(
            "Reconcile errors and replica writes",
            "Failed reconcile cycles and replica counts written, per second.",
            "short",
            (
                Query(
                    "sum(rate(llmroute_operator_reconcile_errors_total[$__rate_interval]))",
                    "reconcile errors",
                ),
                Query(
                    "sum by (direction) (rate(llmroute_operator_scale_writes_total[$__rate_interval]))",
                    "writes {{direction}}",
                ),
            ),
        ),
        Panel(
            "Metrics cycle",
            "Duration of the last metrics cycle (all routes' queries) and the number of queries it sent.",
            "s",
            (
                Query("max(llmroute_operator_metrics_cycle_seconds)", "duration"),
                Query("max(llmroute_operator_metrics_cycle_queries)", "queries"),
            ),
        ),
        Panel(
            "Operator CPU and memory",
            "CPU cores and resident memory (MiB) of the operator process.",
            "short",
            (
                Query(_operator("rate(process_cpu_seconds_total[$__rate_interval])"), "CPU cores"),
                Query(_operator("process_resident_memory_bytes / 1048576"), "memory MiB"),
            ),
        ),
    ),
)
ROWS: tuple[Row, ...] = (OVERVIEW, TRAFFIC, UPSTREAMS, SCALING, RESOURCES, OPERATOR)


def panels() -> list[Panel]:
    return [p for row in ROWS for p in row.panels]


def concrete(expr: str, *, route: str, rate_interval: str) -> str:
    """``expr`` with the dashboard's variables substituted: ``route`` is a regex of route keys (as
    Grafana expands a multi-value variable), ``rate_interval`` a PromQL duration such as ``"1m"``."""
    return expr.replace("$__rate_interval", rate_interval).replace("$route", route)


def route_regex(*routes: str) -> str:
    """``routes`` (``namespace/name``) as Grafana writes a multi-value variable into a PromQL regex
    matcher: regex metacharacters escaped with a doubled backslash (a PromQL string escape), alternatives
    joined with ``|`` in parentheses."""
    escaped = [re.sub(r"([$^*{}\[\]'+?.()|\\])", r"\\\\\1", r) for r in routes]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def metric_names(expr: str) -> set[str]:
    """The llmroute, process and container metric names an expression reads (for the tests' bookkeeping)."""
    return set(re.findall(r"\b((?:llmroute|process|container)_[a-z_]+)\b", expr))
