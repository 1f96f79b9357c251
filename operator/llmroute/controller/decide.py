"""One route's decision, without I/O: observed state in, the writes to make and the status to report out.

This is where the core's three decisions (scaling, rate-limit plan, failover) meet the operator's
rules: no writes while paused or while another autoscaler owns the Deployment, conditions with stable
transition times, and one Event per transition (not one per cycle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from llmroute.controller.conditions import Status, get, set_condition
from llmroute.controller.hub import RouteMetrics, UpstreamMetrics
from llmroute.core.failover import FailoverState, UpstreamObservation, evaluate
from llmroute.core.ratelimit import ShedState, plan
from llmroute.core.scaling import ScalerState, recommend
from llmroute.core.series import LoadSeries
from llmroute.k8s.workload import Scale
from llmroute.render.config import build_proxy_config
from llmroute.spec.proxyconfig import ProxyConfig
from llmroute.spec.route import LLMRoute
from llmroute.spec.status import Condition, Decision, LLMRouteStatus, Load, Replicas

EventType = Literal["Normal", "Warning"]
METRIC_KEYS = {
    "RequestsPerSecond": "rps",
    "InFlight": "inflight",
    "TokensPerSecond": "tokens",
    "Custom": "load",
}


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Observed:
    now: datetime
    metrics: RouteMetrics | None
    metrics_error: str | None
    history_start: float
    history: npt.NDArray[np.float64]
    history_step: int
    scale: Scale | None
    conflicts: list[str]
    previous: LLMRouteStatus
    dry_run: bool = False


@dataclass
class Outcome:
    replicas: int | None  # write this replica count (None: leave the Deployment alone)
    initial_replicas: int  # replicas for a Deployment llmroute is about to create
    config: ProxyConfig | None  # write this config (None: keep the last good one)
    status: LLMRouteStatus
    events: list[Event] = field(default_factory=list)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _state(previous: LLMRouteStatus) -> dict[str, Any]:
    try:
        loaded = json.loads(previous.controller_state or "{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def decide(route: LLMRoute, obs: Observed) -> Outcome:
    spec, now, prev = route.spec, obs.now, obs.previous
    stamp, generation = _iso(now), route.metadata.generation
    saved = _state(prev)
    events: list[Event] = []
    conditions: list[Condition] = list(prev.conditions)

    def condition(type_: str, status: Status, reason: str, message: str) -> None:
        nonlocal conditions
        before = get(conditions, type_)
        conditions = set_condition(
            conditions, type_, status, reason, message, now=stamp, generation=generation
        )
        after = get(conditions, type_)
        changed = before is None or (before.status, before.reason) != (status, reason)
        if changed and after is not None:
            _transition_event(events, type_, after, first=before is None)

    # --- observe -----------------------------------------------------------------------------------
    metric_key = METRIC_KEYS[spec.scaling.metric.type]
    metrics = obs.metrics
    stale_after = timedelta(seconds=spec.scaling.fallback.stale_after_seconds)
    fresh = metrics is not None and now - datetime.fromtimestamp(metrics.time, UTC) <= stale_after
    has_load = fresh and not obs.metrics_error and metrics is not None and metric_key in metrics.values
    if obs.metrics_error:
        condition("MetricsAvailable", "False", "PrometheusUnavailable", obs.metrics_error)
    elif not has_load:
        condition("MetricsAvailable", "False", "NoData", f"no fresh samples of {spec.scaling.metric.type}")
    else:
        condition("MetricsAvailable", "True", "Available", f"{spec.scaling.metric.type} is being reported")
    decision_time = now
    if has_load and metrics is not None:
        series, decision_time = _minutes_until_now(obs, metrics.values[metric_key])
    else:
        # without fresh data the core must see none at all (never a stale figure, never zero load)
        series = LoadSeries.empty(now, obs.history_step)

    current = obs.scale.spec_replicas if obs.scale else None
    running = max(obs.scale.spec_replicas, obs.scale.status_replicas) if obs.scale else 0

    # --- scaling -----------------------------------------------------------------------------------
    scaling = recommend(
        spec,
        now=decision_time,
        current_replicas=current if current is not None else spec.proxy.min_replicas,
        history=series,
        state=ScalerState.from_dict(saved.get("scaler") or {}),
    )
    rec = scaling.recommendation.model_copy(update={"time": stamp})
    desired = rec.final
    paused = route.paused or obs.dry_run
    write_replicas: int | None = None
    if obs.conflicts:
        condition(
            "ScalingLimited",
            "True",
            "ConflictingAutoscaler",
            f"{', '.join(obs.conflicts)} targets the Deployment; llmroute does not write replicas",
        )
        desired = current if current is not None else desired
    elif paused:
        condition("ScalingLimited", "True", "Paused", f"paused: would scale to {rec.final}")
    elif rec.limited_by:
        condition("ScalingLimited", "True", _reason(rec.limited_by[0]), rec.reason)
    else:
        condition("ScalingLimited", "False", "WithinBounds", rec.reason)
    if (
        obs.scale is not None
        and current is not None
        and desired != current
        and not paused
        and not obs.conflicts
    ):
        write_replicas = desired
        verb = "ScaledUp" if desired > current else "ScaledDown"
        events.append(Event("Normal", verb, f"{current} -> {desired}: {rec.reason}"))

    # --- failover ----------------------------------------------------------------------------------
    observations: dict[str, UpstreamObservation | None] = {}
    for upstream in spec.upstreams:
        seen = metrics.upstreams.get(upstream.name) if (metrics and fresh and not obs.metrics_error) else None
        observations[upstream.name] = _observation(seen) if seen else None
    failover = evaluate(
        spec, now=now, observations=observations, state=FailoverState.from_dict(saved.get("failover") or {})
    )
    for message in failover.events:
        kind: EventType = "Warning" if "unhealthy" in message.lower() else "Normal"
        events.append(Event(kind, "UpstreamHealth", message))
    if failover.fail_open:
        condition(
            "FailedOver",
            "True",
            "FailOpen",
            f"every upstream is unhealthy; serving group {failover.active_group}",
        )
    elif failover.active_group != 0:
        condition(
            "FailedOver", "True", "FailedOver", f"group 0 unhealthy; serving group {failover.active_group}"
        )
    else:
        condition("FailedOver", "False", "Primary", "serving the primary group")

    # --- rate limits -------------------------------------------------------------------------------
    target = spec.scaling.metric.target_per_replica
    load_value = metrics.values.get(metric_key) if (metrics and has_load) else None
    utilisation = load_value / (max(running, 1) * target) if load_value is not None else None
    limits = plan(
        spec,
        now=now,
        current_replicas=running or desired,
        desired_replicas=desired,
        utilisation=utilisation,
        at_max=desired >= spec.proxy.max_replicas,
        state=ShedState.from_dict(saved.get("shed") or {}),
    )
    for message in limits.events:
        events.append(Event("Normal", "LimitsChanged", message))
    # failing open means serving from the least-bad group: its members must stay usable
    unhealthy = (
        set() if failover.fail_open else {u.name for u in failover.upstreams if u.state == "Unhealthy"}
    )
    config = build_proxy_config(
        route,
        limits=limits.limits,
        divisor=limits.divisor,
        replicas=desired,
        active_group=failover.active_group,
        unhealthy=unhealthy,
    )

    # --- alerts ------------------------------------------------------------------------------------
    alerts = _alerts(route, metrics.values if (metrics and fresh) else {})
    if failover.fail_open:
        alerts.append("every upstream is unhealthy")
    if alerts:
        condition("Degraded", "True", "AlertFiring", "; ".join(alerts))
    else:
        condition("Degraded", "False", "Healthy", "no alert threshold crossed")
    if obs.scale is None and spec.proxy.deployment_name is not None:
        condition(
            "Ready", "False", "DeploymentNotFound", f"Deployment {spec.proxy.deployment_name} not found"
        )
    else:
        condition("Ready", "True", "Reconciled", "paused" if paused else "reconciled")

    # --- status ------------------------------------------------------------------------------------
    history_list = list(prev.history)
    if write_replicas is not None and current is not None:
        history_list.append(
            Decision.model_validate(
                {"time": stamp, "from": current, "to": write_replicas, "reason": rec.reason}
            )
        )
    values = metrics.values if (metrics and fresh) else {}
    load = Load(
        time=stamp,
        requests_per_second=_round(values.get("rps")),
        inflight=_round(values.get("inflight")),
        tokens_per_second=_round(values.get("tokens")),
        latency_p95_seconds=_round(values.get("latency_p95")),
        error_rate=_round(values.get("error_rate")),
        per_replica=_round(load_value / max(running, 1)) if load_value is not None else None,
    )
    state = {
        "scaler": scaling.state.to_dict(),
        "shed": limits.state.to_dict(),
        "failover": failover.state.to_dict(),
    }
    status = LLMRouteStatus(
        observed_generation=generation,
        replicas=Replicas(desired=desired, current=current),
        recommendation=rec,
        history=history_list[-10:],
        load=load,
        upstreams=failover.upstreams,
        active_group=failover.active_group,
        effective_limits=limits.limits,
        forecast=scaling.forecast,
        config_hash=config.hash,
        controller_state=json.dumps(state, separators=(",", ":"), sort_keys=True),
        conditions=conditions,
    )
    return Outcome(
        replicas=write_replicas,
        initial_replicas=desired,
        config=None if paused else config,
        status=status,
        events=events,
    )


def _minutes_until_now(obs: Observed, latest: float) -> tuple[LoadSeries, datetime]:
    """Whole-minute history whose last complete minute holds the latest trailing-minute rate.

    The core decides on minute buckets complete at its ``now``. The operator's freshest figure is the
    rate over the minute ending *now*, newer than the last whole minute in the history: it stands in for
    that last minute (it covers it within less than a minute), so decisions use the freshest load while
    ``now`` — and with it every stabilisation window and policy period — stays exact.
    """
    start = datetime.fromtimestamp(obs.history_start, UTC)
    minutes = LoadSeries(start=start, step_seconds=obs.history_step, values=obs.history).to_minutes()
    last_complete = int(obs.now.timestamp() // 60) * 60 - 60
    first = int(minutes.start.timestamp()) if len(minutes) else last_complete
    first = min(first, last_complete)
    size = (last_complete - first) // 60 + 1
    values = np.full(size, np.nan)
    keep = min(len(minutes), size - 1)
    values[:keep] = minutes.values[:keep]
    values[-1] = latest
    return LoadSeries(datetime.fromtimestamp(first, UTC), 60, values), obs.now


def _observation(seen: UpstreamMetrics) -> UpstreamObservation:
    """Error rate over the window, raised to the share of proxy replicas that currently eject the
    upstream: passive ejection cuts a failing upstream's traffic to a trickle, so its windowed error
    rate alone would take most of the window to cross the threshold."""
    error_rate = seen.error_rate
    if seen.healthy_fraction is not None:
        ejected = min(1.0, max(0.0, 1.0 - seen.healthy_fraction))
        error_rate = max(error_rate or 0.0, ejected) if (error_rate is not None or ejected > 0) else None
    return UpstreamObservation(
        error_rate=error_rate, latency_p95_seconds=seen.latency_p95, requests=seen.requests
    )


def _reason(limit: str) -> str:
    cleaned = "".join(
        part[:1].upper() + part[1:] for part in limit.replace("-", " ").replace("_", " ").split()
    )
    return cleaned or "Limited"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _alerts(route: LLMRoute, values: dict[str, float]) -> list[str]:
    a, out = route.spec.alerts, []
    if a.requests_per_second_above is not None and values.get("rps", 0.0) > a.requests_per_second_above:
        out.append(f"requests/s {values['rps']:.1f} above {a.requests_per_second_above}")
    if (
        a.latency_p95_seconds_above is not None
        and values.get("latency_p95", 0.0) > a.latency_p95_seconds_above
    ):
        out.append(f"p95 latency {values['latency_p95']:.2f}s above {a.latency_p95_seconds_above}s")
    if a.error_rate_above is not None and values.get("error_rate", 0.0) > a.error_rate_above:
        out.append(f"error rate {values['error_rate']:.3f} above {a.error_rate_above}")
    return out


TRANSITION_EVENTS: dict[tuple[str, str], tuple[EventType, str]] = {
    ("MetricsAvailable", "False"): ("Warning", "MetricsUnavailable"),
    ("MetricsAvailable", "True"): ("Normal", "MetricsRecovered"),
    ("FailedOver", "True"): ("Warning", "FailedOver"),
    ("FailedOver", "False"): ("Normal", "FailedBack"),
    ("Degraded", "True"): ("Warning", "AlertFiring"),
    ("Degraded", "False"): ("Normal", "AlertResolved"),
}


def _transition_event(events: list[Event], type_: str, cond: Condition, *, first: bool) -> None:
    if type_ == "ScalingLimited" and cond.reason == "ConflictingAutoscaler":
        events.append(Event("Warning", "ConflictingAutoscaler", cond.message))
        return
    if first and (type_ == "MetricsAvailable" or cond.status == "False"):
        return  # a new route's first reading is news only when it is bad (failed over, degraded)
    mapped = TRANSITION_EVENTS.get((type_, cond.status))
    if mapped:
        events.append(Event(mapped[0], mapped[1], cond.message))
