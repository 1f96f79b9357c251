"""Pure decisions: scaling, the rate-limit plan and failover.

Nothing here reads the clock or the network or imports kopf/kubernetes: ``now``, the load history and the
previous state are arguments, and every state is a small JSON-serialisable value. The operator and the
simulator call exactly these functions.
"""

from llmroute.core.failover import FailoverResult, FailoverState, UpstreamObservation, evaluate
from llmroute.core.ratelimit import RateLimitPlan, ShedState, plan
from llmroute.core.scaling import ScalerState, ScalingResult, recommend
from llmroute.core.series import LoadSeries

__all__ = [
    "FailoverResult",
    "FailoverState",
    "LoadSeries",
    "RateLimitPlan",
    "ScalerState",
    "ScalingResult",
    "ShedState",
    "UpstreamObservation",
    "evaluate",
    "plan",
    "recommend",
]
