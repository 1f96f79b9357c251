"""The decision's middle steps, each a small pure function that sets the conditions it owns on the
:class:`StatusReport` and returns its part: scaling (replicas), failover (active group), rate limits
(the proxy config's plan), alerts (``Degraded``) and readiness (``Ready``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from llmroute.core.failover import FailoverResult, FailoverState, UpstreamObservation, evaluate
from llmroute.core.observed import UpstreamMetrics
from llmroute.core.ratelimit import RateLimitPlan, ShedState, plan
from llmroute.core.scaling import ScalerState, ScalingResult, recommend
from llmroute.core.schedule import at_ceiling
from llmroute.decide.load import LoadView
from llmroute.decide.model import Observed
from llmroute.decide.report import StatusReport
from llmroute.spec.route import LLMRoute
from llmroute.spec.status import Recommendation


@dataclass(frozen=True)
class ScalingStep:
    """``desired`` replicas (what the status reports), ``write`` (what to write now, or ``None``),
    ``current`` (the Deployment's ``spec.replicas``, ``None`` without one) and ``running`` (the larger of
    asked-for and existing replicas, 0 without a Deployment)."""

    result: ScalingResult
    recommendation: Recommendation
    desired: int
    write: int | None
    current: int | None
    running: int
    paused: bool


def scale(
    route: LLMRoute, obs: Observed, view: LoadView, saved: dict[str, Any], report: StatusReport
) -> ScalingStep:
    """Recommend replicas; set ``ScalingLimited``; write only when nothing forbids it."""
    spec = route.spec
    current = obs.scale.spec_replicas if obs.scale else None
    running = max(obs.scale.spec_replicas, obs.scale.status_replicas) if obs.scale else 0
    result = recommend(
        spec,
        now=view.decision_time,
        current_replicas=current if current is not None else spec.proxy.min_replicas,
        history=view.series,
        state=ScalerState.from_dict(saved.get("scaler") or {}),
    )
    rec = result.recommendation.model_copy(update={"time": report.now})
    desired = rec.final
    paused = route.paused or obs.dry_run
    if obs.conflicts:
        names = ", ".join(obs.conflicts)
        message = f"{names} targets the Deployment; llmroute does not write replicas"
        report.set("ScalingLimited", "True", "ConflictingAutoscaler", message)
        desired = current if current is not None else desired
    elif paused:
        report.set("ScalingLimited", "True", "Paused", f"paused: would scale to {rec.final}")
    elif rec.limited_by:
        report.set("ScalingLimited", "True", _reason(rec.limited_by[0]), rec.reason)
    else:
        report.set("ScalingLimited", "False", "WithinBounds", rec.reason)
    write = None
    free = not paused and not obs.conflicts
    if free and obs.scale is not None and current is not None and desired != current:
        write = desired
        verb = "ScaledUp" if desired > current else "ScaledDown"
        report.event("Normal", verb, f"{current} -> {desired}: {rec.reason}")
    return ScalingStep(result, rec, desired, write, current, running, paused)


def fail_over(
    route: LLMRoute, now: datetime, view: LoadView, saved: dict[str, Any], report: StatusReport
) -> FailoverResult:
    """Judge every upstream's health and pick the active group; set ``FailedOver``."""
    ups = view.metrics.upstreams if (view.metrics is not None and view.usable) else {}
    observations = {
        u.name: (_observation(ups[u.name]) if u.name in ups else None) for u in route.spec.upstreams
    }
    state = FailoverState.from_dict(saved.get("failover") or {})
    result = evaluate(route.spec, now=now, observations=observations, state=state)
    for event in result.events:
        report.event("Warning" if event.warning else "Normal", "UpstreamHealth", event.message)
    if result.fail_open:
        message = f"every upstream is unhealthy; serving group {result.active_group}"
        report.set("FailedOver", "True", "FailOpen", message)
    elif result.active_group != 0:
        message = f"group 0 unhealthy; serving group {result.active_group}"
        report.set("FailedOver", "True", "FailedOver", message)
    elif view.load is not None and not ups:
        message = (
            "no per-upstream metrics for this route (llmroute_requests_total{upstream,code} or "
            "llmroute_proxy_upstream_attempts_total): upstream health is unknown and failover cannot act"
        )
        report.set("FailedOver", "Unknown", "UpstreamHealthUnknown", message)
    else:
        report.set("FailedOver", "False", "Primary", "serving the primary group")
    return result


def limit(
    route: LLMRoute,
    now: datetime,
    view: LoadView,
    scaling: ScalingStep,
    saved: dict[str, Any],
    report: StatusReport,
) -> RateLimitPlan:
    """The rate-limit plan: global limits divided per replica, adaptive shedding at saturation."""
    spec = route.spec
    target = spec.scaling.metric.target_per_replica
    running, desired = scaling.running, scaling.desired
    # over the replicas asked for: in the cycle that scales up to the ceiling the load is still that of
    # the replicas before it, and shedding on it would tighten a tier the ceiling's capacity could serve
    serving = max(running, desired, 1)
    utilisation = view.load / (serving * target) if view.load is not None else None
    result = plan(
        spec,
        now=now,
        current_replicas=running or desired,
        desired_replicas=desired,
        utilisation=utilisation,
        at_max=at_ceiling(spec, view.decision_time, desired),
        state=ShedState.from_dict(saved.get("shed") or {}),
    )
    for message in result.events:
        report.event("Normal", "LimitsChanged", message)
    return result


ALERT_NAMES = ("HighRequestRate", "HighLatencyP95", "HighErrorRate")
"""The ``spec.alerts`` thresholds, named as the PrometheusRule's alerts that use the same figures."""


def alert(
    route: LLMRoute,
    now: datetime,
    for_seconds: float,
    view: LoadView,
    failover: FailoverResult,
    saved: dict[str, Any],
    report: StatusReport,
) -> dict[str, float]:
    """``Degraded`` when a ``spec.alerts`` threshold has been crossed for ``for_seconds`` (as a
    PrometheusRule's ``for:``: a cycle without the figure, or below it, starts over), or at once when
    every upstream is unhealthy. Returns when each crossed threshold was first seen (unix seconds), the
    state the next cycle needs."""
    a, values, t = route.spec.alerts, view.values, now.timestamp()
    rps, p95, errors = values.get("rps"), values.get("latency_p95"), values.get("error_rate")
    crossed: dict[str, str] = {}
    if a.requests_per_second_above is not None and rps is not None and rps > a.requests_per_second_above:
        crossed["HighRequestRate"] = f"requests/s {rps:.1f} above {a.requests_per_second_above}"
    if a.latency_p95_seconds_above is not None and p95 is not None and p95 > a.latency_p95_seconds_above:
        crossed["HighLatencyP95"] = f"p95 latency {p95:.2f}s above {a.latency_p95_seconds_above}s"
    if a.error_rate_above is not None and errors is not None and errors > a.error_rate_above:
        crossed["HighErrorRate"] = f"error rate {errors:.3f} above {a.error_rate_above}"
    previous = saved.get("alerts") if isinstance(saved.get("alerts"), dict) else {}
    since = {name: _since(previous, name, t) for name in crossed}
    firing = [crossed[name] for name in crossed if t - since[name] >= for_seconds]
    pending = [name for name in crossed if t - since[name] < for_seconds]
    if failover.fail_open:
        firing.append("every upstream is unhealthy")
    if firing:
        report.set("Degraded", "True", "AlertFiring", "; ".join(firing))
    elif pending:
        wait = f"{for_seconds:.0f}s"
        report.set("Degraded", "False", "AlertPending", f"{', '.join(pending)} crossed, firing after {wait}")
    else:
        report.set("Degraded", "False", "Healthy", "no alert threshold crossed")
    return since


def _since(previous: Any, name: str, now: float) -> float:
    value = previous.get(name) if isinstance(previous, dict) else None
    return float(value) if isinstance(value, int | float) and value <= now else now


def authenticated(route: LLMRoute, report: StatusReport) -> None:
    """``Authenticated``: whether the route's proxies know who their clients are. An explicitly
    unauthenticated route is ``False`` (with a Warning Event when it becomes so): anyone who can reach
    its Service spends its upstream keys."""
    identity = route.spec.rate_limits.identity
    if identity.type == "Unauthenticated":
        message = (
            "rateLimits.identity.type is Unauthenticated: any client that reaches the Service is served "
            "with the upstream keys; configure tiers with apiKeysSecretRef, or restrict who can reach it "
            "(proxy.networkPolicy)"
        )
        report.set("Authenticated", "False", "Unauthenticated", message, announce=True)
    elif identity.type == "Header":
        message = f"tiers are named by the {identity.header} header, set by a trusted front end"
        report.set("Authenticated", "True", "TrustedHeader", message)
    else:
        report.set("Authenticated", "True", "ApiKeys", "every client is verified by its API key")


def ready(route: LLMRoute, obs: Observed, paused: bool, report: StatusReport) -> None:
    """``Ready``: the cycle reconciled (write failures are reported by the caller, after the writes)."""
    name = route.spec.proxy.deployment_name
    if obs.scale is None and name is not None:
        report.set("Ready", "False", "DeploymentNotFound", f"Deployment {name} not found")
    else:
        report.set("Ready", "True", "Reconciled", "paused" if paused else "reconciled")


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
