"""What one decision reports besides its writes: the route's conditions and the Events they cause.

:class:`StatusReport` starts from the previous status's conditions; each step sets the conditions it
owns and may add Events of its own. An Event fires on a *transition* (a condition's status changing; for
``ConflictingAutoscaler``, its reason), never once per cycle, so a route that stays failed over says so
once, and an outage whose reason changes (Prometheus down, then back without fresh samples yet) posts one
``MetricsUnavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from llmroute.decide.conditions import Status, get, set_condition
from llmroute.spec.status import Condition, ConditionType

EventType = Literal["Normal", "Warning"]


ACTIONS: dict[str, str] = {
    "ScaledUp": "Scale",
    "ScaledDown": "Scale",
    "ConflictingAutoscaler": "Scale",
    "UpstreamHealth": "Failover",
    "FailedOver": "Failover",
    "FailedBack": "Failover",
    "UpstreamHealthUnknown": "Failover",
    "LimitsChanged": "UpdateLimits",
    "MetricsUnavailable": "ReadMetrics",
    "MetricsRecovered": "ReadMetrics",
    "AlertFiring": "EvaluateAlerts",
    "AlertResolved": "EvaluateAlerts",
    "Created": "Create",
    "Updated": "Update",
    "Restored": "Update",
    "InvalidSpec": "Validate",
    "Unauthenticated": "Validate",
}
"""The action an Event's reason reports (``events.k8s.io/v1`` ``action``); any other reason: Reconcile."""


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the route: ``type`` Normal or Warning, a CamelCase ``reason``."""

    type: EventType
    reason: str
    message: str

    @property
    def action(self) -> str:
        """What the operator was doing when this happened (e.g. ``Scale``, ``Failover``)."""
        return ACTIONS.get(self.reason, "Reconcile")


TRANSITION_EVENTS: dict[tuple[ConditionType, Status], tuple[EventType, str, frozenset[Status]]] = {
    ("MetricsAvailable", "False"): ("Warning", "MetricsUnavailable", frozenset({"True", "Unknown"})),
    ("MetricsAvailable", "True"): ("Normal", "MetricsRecovered", frozenset({"False", "Unknown"})),
    ("FailedOver", "True"): ("Warning", "FailedOver", frozenset({"False", "Unknown"})),
    ("FailedOver", "False"): ("Normal", "FailedBack", frozenset({"True"})),
    ("FailedOver", "Unknown"): ("Warning", "UpstreamHealthUnknown", frozenset({"True", "False"})),
    ("Degraded", "True"): ("Warning", "AlertFiring", frozenset({"False", "Unknown"})),
    ("Degraded", "False"): ("Normal", "AlertResolved", frozenset({"True"})),
    ("Authenticated", "False"): ("Warning", "Unauthenticated", frozenset({"True", "Unknown"})),
}
"""The Event a condition's move to a status posts, and the statuses it must come from (a new route's
first reading counts as coming from anywhere). Transitions not listed post none."""


@dataclass
class StatusReport:
    """Conditions being decided for one route at ``now`` (RFC 3339) and ``generation``, plus Events."""

    conditions: list[Condition]
    now: str
    generation: int | None
    events: list[Event] = field(default_factory=list)

    def set(
        self, type_: ConditionType, status: Status, reason: str, message: str, *, announce: bool = False
    ) -> None:
        """Set a condition; on a transition, add the Event that announces it (if any). ``announce``: post
        it even on a new route's first reading (a problem that will not go away by itself)."""
        before = get(self.conditions, type_)
        self.conditions = set_condition(
            self.conditions, type_, status, reason, message, now=self.now, generation=self.generation
        )
        if before is not None and (before.status, before.reason) == (status, reason):
            return
        if type_ == "ScalingLimited" and reason == "ConflictingAutoscaler":
            self.event("Warning", "ConflictingAutoscaler", message[:32768])
            return
        if before is None and not announce and (type_ == "MetricsAvailable" or status == "False"):
            return  # a new route's first reading is news only when it is bad (failed over, degraded)
        mapped = TRANSITION_EVENTS.get((type_, status))
        if mapped is None:
            return
        kind, event_reason, sources = mapped
        if before is None or before.status in sources or (announce and before.status == status):
            self.event(kind, event_reason, message[:32768])

    def event(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))
