"""``evaluate``: per-upstream health and the active upstream group.

Each upstream runs a small state machine on its observation over ``failover.windowSeconds`` (error rate,
p95 latency, request count):

* ``Unknown`` - never judged. Counts as usable (a quiet endpoint is not a broken one).
* ``Healthy`` -> ``Unhealthy`` when the error rate is above ``errorRateThreshold`` or the p95 latency above
  ``latencyThresholdSeconds``. It then stays out for a cooldown of ``cooldownSeconds`` doubled for each
  failure in a row, at most ``maxCooldownSeconds``.
* ``Unhealthy`` -> ``Recovering`` after the cooldown and once the window holds only what happened after
  the upstream was marked unhealthy (so at least ``windowSeconds`` later), when both figures are below
  threshold x ``recoveryFactor``. The figures that made it unhealthy never decide its recovery, nor count
  as a second failure.
* ``Recovering`` -> ``Healthy`` after ``failbackAfterSeconds`` continuously below those stricter figures;
  back to ``Unhealthy`` (longer cooldown) if it crosses the failure threshold again. After a
  ``maxCooldownSeconds`` of health the failure count is forgotten.

An observation with fewer than ``minRequests`` requests, or none at all, changes nothing.

The active group is the lowest-numbered group with a usable (``Healthy`` or ``Unknown``) member. Leaving a
group with no usable member is immediate; moving back to a better group waits until ``minDwellSeconds``
have passed since the last switch. With no usable upstream anywhere it fails open to the least-bad group
(one with a recovering member, then the lowest error rate, then the lowest latency) and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from llmroute.core.backoff import backoff_seconds
from llmroute.core.jsonstate import integer, number, text
from llmroute.spec.route import LLMRouteSpec
from llmroute.spec.status import UpstreamStatus
from llmroute.spec.times import epoch_rfc3339
from llmroute.spec.upstream import Failover

State = Literal["Healthy", "Unhealthy", "Recovering", "Unknown"]
STATES: tuple[State, ...] = ("Healthy", "Unhealthy", "Recovering", "Unknown")
USABLE: frozenset[str] = frozenset({"Healthy", "Unknown"})

FailoverEventKind = Literal[
    "UpstreamUnhealthy", "UpstreamRecovering", "UpstreamHealthy", "FailOpen", "FailOpenEnded", "Switched"
]
WARNING_KINDS: frozenset[FailoverEventKind] = frozenset({"UpstreamUnhealthy", "FailOpen"})
"""Kinds that announce trouble (Warning Events); the others report progress (Normal Events)."""


@dataclass(frozen=True)
class FailoverEvent:
    """Something that changed this evaluation: ``kind`` says what, ``message`` says it for people."""

    kind: FailoverEventKind
    message: str

    @property
    def warning(self) -> bool:
        return self.kind in WARNING_KINDS


@dataclass(frozen=True)
class UpstreamObservation:
    """One upstream over the failover window. ``None`` figures are unknown."""

    error_rate: float | None = None
    latency_p95_seconds: float | None = None
    requests: float | None = None


@dataclass(frozen=True)
class Health:
    state: State = "Unknown"
    since: float | None = None
    failures: int = 0
    cooldown_until: float | None = None
    good_since: float | None = None
    error_rate: float | None = None
    latency: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"s": self.state, "since": self.since, "n": self.failures}
        if self.cooldown_until is not None:
            out["cool"] = self.cooldown_until
        if self.good_since is not None:
            out["good"] = self.good_since
        if self.error_rate is not None:
            out["err"] = round(self.error_rate, 6)
        if self.latency is not None:
            out["lat"] = round(self.latency, 6)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Health:
        raw = text(data.get("s"), "Unknown")
        state: State = next((s for s in STATES if s == raw), "Unknown")
        return cls(
            state=state,
            since=number(data.get("since")),
            failures=max(0, integer(data.get("n"), 0)),
            cooldown_until=number(data.get("cool")),
            good_since=number(data.get("good")),
            error_rate=number(data.get("err")),
            latency=number(data.get("lat")),
        )


@dataclass(frozen=True)
class FailoverState:
    upstreams: Mapping[str, Health] = field(default_factory=dict)
    active_group: int | None = None
    switched_at: float | None = None
    fail_open: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "up": {k: v.to_dict() for k, v in sorted(self.upstreams.items())},
            "group": self.active_group,
            "switched": self.switched_at,
            "open": self.fail_open,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FailoverState:
        if not data:
            return cls()
        ups = data.get("up") if isinstance(data.get("up"), dict) else {}
        group = data.get("group")
        return cls(
            {str(k): Health.from_dict(v) for k, v in (ups or {}).items() if isinstance(v, dict)},
            group if isinstance(group, int) and not isinstance(group, bool) else None,
            number(data.get("switched")),
            data.get("open") is True,
        )


@dataclass(frozen=True)
class FailoverResult:
    active_group: int
    upstreams: list[UpstreamStatus]
    state: FailoverState
    events: list[FailoverEvent]
    fail_open: bool


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else epoch_rfc3339(epoch)


def _figures(obs: UpstreamObservation, cfg: Failover, factor: float) -> tuple[bool, str]:
    """Whether the observation is above ``factor`` x the thresholds, and a description."""
    parts: list[str] = []
    above = False
    if obs.error_rate is not None:
        limit = cfg.error_rate_threshold * factor
        parts.append(f"error rate {obs.error_rate:.3f} vs {limit:.3f}")
        above |= obs.error_rate > limit
    if obs.latency_p95_seconds is not None:
        limit = cfg.latency_threshold_seconds * factor
        parts.append(f"p95 {obs.latency_p95_seconds:.2f}s vs {limit:.2f}s")
        above |= obs.latency_p95_seconds > limit
    return above, ", ".join(parts)


def _cooldown(cfg: Failover, failures: int) -> float:
    """``cooldownSeconds x 2^(failures - 1)``, at most ``maxCooldownSeconds`` (:func:`.backoff_seconds`: the
    failure count of an upstream that flaps for days keeps growing, and its cooldown must never overflow)."""
    return backoff_seconds(cfg.cooldown_seconds, cfg.max_cooldown_seconds, failures)


def _judged_again(h: Health, cfg: Failover) -> float:
    """When an unhealthy upstream's figures may next decide anything (unix s): after its cooldown, and once
    its window (``windowSeconds``) lies wholly after the moment it was marked unhealthy. Before that the
    window still holds the failure that was already acted on, diluted by the traffic served before it: a
    figure from it would call the upstream recovering too early and then, as the window slides onto the
    errors alone, unhealthy again, doubling its cooldown for a failure counted twice."""
    since = h.since if h.since is not None else -math.inf
    return max(h.cooldown_until if h.cooldown_until is not None else -math.inf, since + cfg.window_seconds)


def at(h: Health, cfg: Failover, now: float) -> Health:
    """``h`` as seen at ``now``: a time stamped after ``now`` (a clock that went back, a status restored
    from a backup, a leader whose clock is behind its predecessor's) reads as ``now``, and a cooldown ends
    at most ``maxCooldownSeconds`` from ``now``. Otherwise an upstream marked unhealthy "tomorrow" would stay
    out until the clock got there, and a healthy one would never have its failure count forgotten.

    An unhealthy upstream's cooldown is the one ``cfg`` gives its failures, counted from when it was marked:
    a ``cooldownSeconds`` or ``maxCooldownSeconds`` changed while it is out applies to it at once, as it
    would have had the new value been set when it failed (the cooldown stamped then would otherwise keep
    it out for the old length)."""
    since = None if h.since is None else min(h.since, now)
    good = None if h.good_since is None else min(h.good_since, now)
    cool = h.cooldown_until
    if h.state == "Unhealthy" and since is not None:
        cool = since + _cooldown(cfg, h.failures)
    elif cool is not None:
        cool = min(cool, now + cfg.max_cooldown_seconds)
    if (since, good, cool) == (h.since, h.good_since, h.cooldown_until):
        return h
    return replace(h, since=since, good_since=good, cooldown_until=cool)


def step(
    name: str, h: Health, obs: UpstreamObservation | None, cfg: Failover, now: float
) -> tuple[Health, FailoverEvent | None]:
    """Advance one upstream's state machine; returns the new health and an event (or ``None``)."""
    h = at(h, cfg, now)
    judged = (
        obs is not None
        and (obs.error_rate is not None or obs.latency_p95_seconds is not None)
        and (obs.requests is None or obs.requests >= cfg.min_requests)
    )
    if not judged or obs is None:
        return h, None
    h = replace(h, error_rate=obs.error_rate, latency=obs.latency_p95_seconds)
    bad, desc = _figures(obs, cfg, 1.0)
    not_good, strict = _figures(obs, cfg, cfg.recovery_factor)
    if h.state in ("Unknown", "Healthy"):
        failures = h.failures
        if h.state == "Healthy" and h.since is not None and now - h.since >= cfg.max_cooldown_seconds:
            failures = 0
        if bad:
            failures += 1
            cool = _cooldown(cfg, failures)
            new = Health("Unhealthy", now, failures, now + cool, None, h.error_rate, h.latency)
            return new, FailoverEvent(
                "UpstreamUnhealthy", f"upstream {name} is unhealthy ({desc}); cooldown {cool:.0f}s"
            )
        if h.state == "Unknown":
            return replace(h, state="Healthy", since=now, failures=failures), None
        return replace(h, failures=failures), None
    if h.state == "Unhealthy":
        if now < _judged_again(h, cfg):
            return h, None
        if not not_good:
            new = replace(h, state="Recovering", since=now, good_since=now)
            return new, FailoverEvent("UpstreamRecovering", f"upstream {name} is recovering ({strict})")
        return h, None
    # Recovering
    if bad:
        failures = h.failures + 1
        cool = _cooldown(cfg, failures)
        new = Health("Unhealthy", now, failures, now + cool, None, h.error_rate, h.latency)
        return new, FailoverEvent(
            "UpstreamUnhealthy", f"upstream {name} is unhealthy again ({desc}); cooldown {cool:.0f}s"
        )
    if not_good:
        return replace(h, good_since=None), None
    good_since = now if h.good_since is None else h.good_since
    if now - good_since >= cfg.failback_after_seconds:
        new = replace(h, state="Healthy", since=now, cooldown_until=None, good_since=None)
        message = f"upstream {name} is healthy again after {now - good_since:.0f}s ({strict})"
        return new, FailoverEvent("UpstreamHealthy", message)
    return replace(h, good_since=good_since), None


def _least_bad(groups: dict[int, list[tuple[str, Health]]]) -> int:
    def score(g: int) -> tuple[int, float, float, int]:
        members = groups[g]
        recovering = any(h.state == "Recovering" for _, h in members)
        err = min((h.error_rate for _, h in members if h.error_rate is not None), default=float("inf"))
        lat = min((h.latency for _, h in members if h.latency is not None), default=float("inf"))
        return (0 if recovering else 1, err, lat, g)

    return min(groups, key=score)


def evaluate(
    spec: LLMRouteSpec,
    *,
    now: datetime,
    observations: Mapping[str, UpstreamObservation | None],
    state: FailoverState,
) -> FailoverResult:
    """Health of every upstream and the group to serve from at ``now``."""
    cfg = spec.failover
    t = now.timestamp()
    events: list[FailoverEvent] = []
    healths: dict[str, Health] = {}
    groups: dict[int, list[tuple[str, Health]]] = {}
    for up in spec.upstreams:
        h, event = step(up.name, state.upstreams.get(up.name, Health()), observations.get(up.name), cfg, t)
        healths[up.name] = h
        groups.setdefault(up.group, []).append((up.name, h))
        if event:
            events.append(event)
    usable = sorted(g for g, members in groups.items() if any(h.state in USABLE for _, h in members))
    previous = state.active_group
    switched_at = state.switched_at
    if switched_at is not None and switched_at > t:
        switched_at = t  # stamped ahead (see :func:`at`): the dwell runs from now, not from then
    fail_open = not usable
    if fail_open:
        active = _least_bad(groups)
        if not state.fail_open or previous != active:
            recovering = any(h.state == "Recovering" for h in healths.values())
            which = "unhealthy or still recovering" if recovering else "unhealthy"
            message = f"every upstream is {which}: failing open to group {active} (least bad)"
            events.append(FailoverEvent("FailOpen", message))
    else:
        best = usable[0]
        if previous is None or previous not in groups:
            active = best
        elif previous not in usable:
            active = best  # the active group has nothing usable left: move now
        elif best < previous and (switched_at is None or t - switched_at >= cfg.min_dwell_seconds):
            active = best
        else:
            active = previous
        if state.fail_open:
            events.append(FailoverEvent("FailOpenEnded", f"upstreams usable again: serving group {active}"))
    if previous is not None and active != previous:
        switched_at = t
        verb = "failing back" if active < previous else "failing over"
        events.append(FailoverEvent("Switched", f"{verb} from group {previous} to group {active}"))
    elif previous is None:
        switched_at = t
    statuses = [
        UpstreamStatus(
            name=up.name,
            group=up.group,
            state=healths[up.name].state,
            error_rate=healths[up.name].error_rate,
            latency_p95_seconds=healths[up.name].latency,
            since=_iso(healths[up.name].since),
        )
        for up in spec.upstreams
    ]
    new_state = FailoverState(healths, active, switched_at, fail_open)
    return FailoverResult(active, statuses, new_state, events, fail_open)
