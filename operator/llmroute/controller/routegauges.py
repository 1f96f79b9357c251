"""Each route's decisions as Prometheus gauges on the operator's own ``/metrics``, so one generic
PrometheusRule and the dashboard can read every route's thresholds and state (labels: ``route`` is
``<namespace>/<name>``, as on the proxy's metrics; every label set is removed when the route goes).

- ``llmroute_route_alert_threshold{route,alert}``: ``spec.alerts`` (``HighRequestRate`` req/s,
  ``HighLatencyP95`` seconds, ``HighErrorRate`` ratio 0..1); absent when the route sets none.
- ``llmroute_route_condition{route,type,status}``: 1 for each condition's current status, else 0.
- ``llmroute_route_replicas{route,kind}``: ``desired``, ``current`` (the Deployment's ``spec.replicas``),
  ``min`` and ``max`` in force this cycle (the spec's, narrowed by an open schedule), ``forecast`` (the
  replicas the forecast asks for, with prediction on).
- ``llmroute_route_load{route}``: the load the last decision used (scaling metric unit);
  ``llmroute_route_load_forecast{route}``: the predicted load ``leadTimeSeconds`` ahead (same unit);
  ``llmroute_route_utilization{route}``: load / (running replicas x ``targetPerReplica``).
- ``llmroute_route_upstream_state{route,upstream,group,state}``: 1 for each upstream's current state
  (Healthy, Unhealthy, Recovering, Unknown), 0 for the other three.
- ``llmroute_route_active_group{route}``: the upstream group being served (0 = primary).
- ``llmroute_route_limit_requests_per_minute{route,tier,scope}`` / ``..._tokens_per_minute``:
  ``scope`` ``global`` or ``replica``; ``llmroute_route_shed_factor{route,tier}`` (1 = not shed).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Gauge

from llmroute.spec.route import LLMRoute
from llmroute.spec.status import Condition, LLMRouteStatus

ALERT_THRESHOLD = Gauge(
    "llmroute_route_alert_threshold", "A route's spec.alerts threshold, per alert", ["route", "alert"]
)
CONDITION = Gauge(
    "llmroute_route_condition",
    "1 for a route condition's current status, else 0",
    ["route", "type", "status"],
)
REPLICAS = Gauge(
    "llmroute_route_replicas", "A route's replicas: desired, current, min, max, forecast", ["route", "kind"]
)
FORECAST = Gauge(
    "llmroute_route_load_forecast", "Predicted load lead-time ahead, in the scaling metric's unit", ["route"]
)
UTILIZATION = Gauge("llmroute_route_utilization", "Load / (running replicas x targetPerReplica)", ["route"])
UPSTREAM_STATE = Gauge(
    "llmroute_route_upstream_state",
    "1 for an upstream's current health state, else 0",
    ["route", "upstream", "group", "state"],
)
LOAD = Gauge(
    "llmroute_route_load", "The load the last decision used, in the scaling metric's unit", ["route"]
)
ACTIVE_GROUP = Gauge(
    "llmroute_route_active_group", "The upstream group being served (0 = primary)", ["route"]
)
LIMIT_REQUESTS = Gauge(
    "llmroute_route_limit_requests_per_minute", "Requests per minute per tier", ["route", "tier", "scope"]
)
LIMIT_TOKENS = Gauge(
    "llmroute_route_limit_tokens_per_minute", "Tokens per minute per tier", ["route", "tier", "scope"]
)
SHED_FACTOR = Gauge(
    "llmroute_route_shed_factor", "Adaptive shedding factor per tier (1: not shed)", ["route", "tier"]
)

GAUGES = (
    ALERT_THRESHOLD,
    CONDITION,
    REPLICAS,
    FORECAST,
    LOAD,
    UTILIZATION,
    UPSTREAM_STATE,
    ACTIVE_GROUP,
    LIMIT_REQUESTS,
    LIMIT_TOKENS,
    SHED_FACTOR,
)
UPSTREAM_STATES = ("Healthy", "Unhealthy", "Recovering", "Unknown")
STATUSES = ("True", "False", "Unknown")


LOAD_FIELDS = {
    "RequestsPerSecond": "requests_per_second",
    "InFlight": "inflight",
    "TokensPerSecond": "tokens_per_second",
}

Samples = dict[Gauge, dict[tuple[str, ...], float]]
_EXPORTED: dict[str, Samples] = {}  # what was last set per route, to remove exactly that


def export(key: str, route: LLMRoute, status: LLMRouteStatus) -> None:
    """Set every gauge of the route ``key`` from its spec and the status just written, and remove the
    label sets that no longer apply (no gap in between: a scrape never sees the route half-exported)."""
    samples = _samples(key, route, status)
    for gauge, values in samples.items():
        for labels, value in values.items():
            gauge.labels(*labels).set(value)
    _remove(_EXPORTED.get(key, {}), keep=samples)
    _EXPORTED[key] = samples


def export_conditions(key: str, conditions: Sequence[Condition]) -> None:
    """Update only the condition gauges (a cycle that failed, or a spec that cannot be read)."""
    samples = {gauge: dict(values) for gauge, values in _EXPORTED.get(key, {}).items()}
    samples[CONDITION] = {
        (key, c.type, state): 1.0 if c.status == state else 0.0 for c in conditions for state in STATUSES
    }
    for labels, value in samples[CONDITION].items():
        CONDITION.labels(*labels).set(value)
    _remove(_EXPORTED.get(key, {}), keep=samples)
    _EXPORTED[key] = samples


def forget(key: str) -> None:
    """Remove every label set of the route ``key`` (the route was deleted)."""
    _remove(_EXPORTED.pop(key, {}), keep={})


def _samples(key: str, route: LLMRoute, status: LLMRouteStatus) -> Samples:
    out: Samples = {gauge: {} for gauge in GAUGES}
    alerts = route.spec.alerts
    for alert, threshold in (
        ("HighRequestRate", alerts.requests_per_second_above),
        ("HighLatencyP95", alerts.latency_p95_seconds_above),
        ("HighErrorRate", alerts.error_rate_above),
    ):
        if threshold is not None:
            out[ALERT_THRESHOLD][(key, alert)] = threshold
    for cond in status.conditions:
        for state in STATUSES:
            out[CONDITION][(key, cond.type, state)] = 1.0 if cond.status == state else 0.0
    rec = status.recommendation
    replicas = {
        "desired": status.replicas.desired,
        "current": status.replicas.current,
        "min": rec.schedule_min if rec and rec.schedule_min is not None else route.spec.proxy.min_replicas,
        "max": rec.schedule_max if rec and rec.schedule_max is not None else route.spec.proxy.max_replicas,
        "forecast": status.forecast.replicas if status.forecast is not None else None,
    }
    out[REPLICAS] = {(key, kind): float(n) for kind, n in replicas.items() if n is not None}
    if status.forecast is not None and status.forecast.value is not None:
        out[FORECAST][(key,)] = status.forecast.value
    per_replica = status.load.per_replica if status.load is not None else None
    if per_replica is not None:
        out[UTILIZATION][(key,)] = per_replica / route.spec.scaling.metric.target_per_replica
    for upstream in status.upstreams:
        for state in UPSTREAM_STATES:
            labels = (key, upstream.name, str(upstream.group), state)
            out[UPSTREAM_STATE][labels] = 1.0 if upstream.state == state else 0.0
    field = LOAD_FIELDS.get(route.spec.scaling.metric.type)
    load = getattr(status.load, field) if field and status.load is not None else None
    if load is not None:
        out[LOAD][(key,)] = load
    if status.active_group is not None:
        out[ACTIVE_GROUP][(key,)] = float(status.active_group)
    for limit in status.effective_limits:
        for gauge, scoped in (
            (LIMIT_REQUESTS, (limit.requests_per_minute, limit.per_replica_requests_per_minute)),
            (LIMIT_TOKENS, (limit.tokens_per_minute, limit.per_replica_tokens_per_minute)),
        ):
            for scope, value in zip(("global", "replica"), scoped, strict=True):
                if value is not None:
                    out[gauge][(key, limit.tier, scope)] = float(value)
        out[SHED_FACTOR][(key, limit.tier)] = limit.shed_factor
    return out


def _remove(exported: Samples, keep: Samples) -> None:
    for gauge, values in exported.items():
        for labels in values.keys() - keep.get(gauge, {}).keys():
            gauge.remove(*labels)
