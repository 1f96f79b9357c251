"""Building blocks of the llmroute dashboard's queries: the panel model (plain data), PromQL helpers over
the proxy's and the operator's metrics, and the substitution of the dashboard's variables.

Queries use the dashboard's variables: ``$route`` (a regex of ``<namespace>/<name>`` values, multi-select),
``$__rate_interval`` (Grafana's: at least four scrape intervals). :func:`concrete` substitutes them, so the
tests and the demo's picture run exactly the dashboard's queries. Metric names are the proxy's
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


def rate(metric: str, *matchers: str) -> str:
    return f"rate({metric}{{{', '.join((ROUTE, *matchers))}}}[$__rate_interval])"


def quantiles(metric: str, by: str = "le") -> tuple[Query, ...]:
    bucket = rate(f"{metric}_bucket")
    return tuple(
        Query(f"histogram_quantile({q}, sum by ({by}) ({bucket}))", f"p{int(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    )


def ratio(part: str, whole: str, by: str) -> str:
    """``part / whole`` by ``by`` that reads 0, not "no data", while ``part`` has no series yet."""
    return f"(sum by ({by}) ({part}) or 0 * sum by ({by}) ({whole})) / sum by ({by}) ({whole})"


def proxy_pods(expr: str) -> str:
    """``expr`` (one series per scrape target) for the proxies of the selected routes only: every proxy
    exports ``llmroute_proxy_config_info`` with its route."""
    return f"{expr} and on (instance, job) llmroute_proxy_config_info{{{ROUTE}}}"


def containers(metric: str, *, counter: bool) -> str:
    """A cAdvisor (kubelet) metric of the proxies' ``proxy`` containers, where cAdvisor is scraped."""
    series = f'{metric}{{container="proxy"}}'
    if counter:
        series = f"rate({series}[$__rate_interval])"
    return f"sum by (namespace, pod) ({series}) and on (namespace, pod) llmroute_proxy_config_info{{{ROUTE}}}"


def threshold(alert: str) -> str:
    """The route's ``spec.alerts`` threshold for ``alert``, as the operator exports it."""
    return f'max by (route) (llmroute_route_alert_threshold{{{ROUTE}, alert="{alert}"}})'


def per_replica(metric: str) -> str:
    return f'max by (route, tier) ({metric}{{{ROUTE}, scope="replica"}})'


def operator_only(expr: str) -> str:
    """``expr`` (one series per scrape target) for the operator only: the target exporting its metrics."""
    return f"{expr} and on (instance, job) llmroute_operator_routes"


REQUESTS = rate("llmroute_requests_total")
FAILED = rate("llmroute_requests_total", ERRORS)
UPSTREAM_SET = 'upstream!~"|none"'  # answers that came from an upstream (not 429s or cache hits)
HEALTH = (
    (0, "Healthy", "green"),
    (1, "Recovering", "yellow"),
    (2, "Unhealthy", "red"),
    (3, "Unknown", "gray"),
)


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
