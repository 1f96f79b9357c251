"""The last step of a decision: the route's status from the other steps' parts."""

from __future__ import annotations

import json

from llmroute.core.failover import FailoverResult
from llmroute.core.ratelimit import RateLimitPlan
from llmroute.decide.load import LoadView
from llmroute.decide.model import Observed
from llmroute.decide.report import StatusReport
from llmroute.decide.steps import ScalingStep
from llmroute.spec.proxyconfig import ProxyConfig
from llmroute.spec.status import Decision, LLMRouteStatus, Load, Replicas

HISTORY_LENGTH = 10
"""Decisions kept in ``status.history``."""


def build_status(
    obs: Observed,
    report: StatusReport,
    view: LoadView,
    scaling: ScalingStep,
    failover: FailoverResult,
    limits: RateLimitPlan,
    config: ProxyConfig,
    alerts: dict[str, float],
) -> LLMRouteStatus:
    """The status to write: replicas, recommendation, last decisions, load, upstream health, limits,
    forecast, the config hash, the core's saved state (JSON) and the conditions."""
    history = list(obs.previous.history)
    if scaling.write is not None and scaling.current is not None:
        entry = {"time": report.now, "from": scaling.current, "to": scaling.write}
        history.append(Decision.model_validate({**entry, "reason": scaling.recommendation.reason}))
    values, running = view.values, scaling.running
    load = Load(
        time=report.now,
        requests_per_second=_round(values.get("rps")),
        inflight=_round(values.get("inflight")),
        tokens_per_second=_round(values.get("tokens")),
        latency_p95_seconds=_round(values.get("latency_p95")),
        error_rate=_round(values.get("error_rate")),
        per_replica=_round(view.load / max(running, 1)) if view.load is not None else None,
    )
    state = {
        "scaler": scaling.result.state.to_dict(),
        "shed": limits.state.to_dict(),
        "failover": failover.state.to_dict(),
        "alerts": alerts,
        "shortSince": view.short_since,
    }
    return LLMRouteStatus(
        observed_generation=report.generation,
        replicas=Replicas(desired=scaling.desired, current=scaling.current),
        recommendation=scaling.recommendation,
        history=history[-HISTORY_LENGTH:],
        load=load,
        upstreams=failover.upstreams,
        active_group=failover.active_group,
        effective_limits=limits.limits,
        forecast=scaling.result.forecast,
        config_hash=config.hash,
        controller_state=json.dumps(state, separators=(",", ":"), sort_keys=True),
        conditions=report.conditions,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
