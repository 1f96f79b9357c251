"""The decision step's input (:class:`Observed`) and output (:class:`RouteActions`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from llmroute.core.observed import RouteMetrics, Scale
from llmroute.decide.report import Event
from llmroute.spec.proxyconfig import ProxyConfig
from llmroute.spec.status import LLMRouteStatus


@dataclass(frozen=True)
class Observed:
    """Everything one cycle knows about a route, gathered before deciding.

    ``history`` holds the scaling metric per ``history_step`` seconds from ``history_start`` (unix
    seconds), NaN where nothing was recorded; ``scale`` is ``None`` when the Deployment does not exist;
    ``conflicts`` names other autoscalers that target it; ``metrics_error`` is the Prometheus error of the
    last metrics cycle, if it failed; ``alert_for_seconds`` is how long a ``spec.alerts`` threshold must
    stay crossed before ``Degraded=True`` (the PrometheusRule's ``for:``)."""

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
    alert_for_seconds: float = 0.0  # how long a threshold must stay crossed before Degraded=True


@dataclass
class RouteActions:
    """What one cycle writes and reports for a route."""

    replicas: int | None  # write this replica count (None: leave the Deployment alone)
    initial_replicas: int  # replicas for a Deployment llmroute is about to create
    config: ProxyConfig | None  # write this config (None: keep the last good one)
    status: LLMRouteStatus
    events: list[Event] = field(default_factory=list)
