"""The Kubernetes HorizontalPodAutoscaler algorithm (``autoscaling/v2`` with ``behavior``), as pure functions.

It mirrors ``pkg/controller/podautoscaler/horizontal.go``: the usage ratio with a tolerance band, the
stabilisation windows (scale up to the lowest and down to the highest recommendation seen within the
window), the step policies (``Pods`` or ``Percent`` per period, ``selectPolicy`` Max/Min/Disabled) and the
min/max bounds. llmroute's own recommender reuses the windows, policies and bounds; the simulator's ``hpa``
policy is exactly :func:`hpa_step`.

One deliberate extension: when decisions are further apart than a policy's period, the policy is applied
once per elapsed period (compounded), which is what the HPA would have done had it looked every period.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from llmroute.core.jsonstate import number, pairs
from llmroute.spec.route import LLMRouteSpec
from llmroute.spec.scaling import ScalingRules

MAX_MEMORY = 64  # bound on remembered recommendations / events (keeps persisted state small)


MAX_COUNT = 2**31 - 1  # a Deployment's replicas is an int32: no count llmroute computes goes above it


def count(ratio: float) -> int:
    """``ceil(ratio)`` as a replica count (``ratio`` = load / load per replica, >= 0), at most
    :data:`MAX_COUNT`: a ratio too large for an int32 (or an int at all: ``inf`` when the load per replica
    is tiny) is that cap, not an ``OverflowError``. The 1e-9 keeps an exact ratio from rounding up."""
    if ratio >= MAX_COUNT:
        return MAX_COUNT
    return max(0, math.ceil(ratio - 1e-9))


@dataclass(frozen=True)
class Policy:
    kind: str  # "Pods" | "Percent"
    value: int
    period: int


@dataclass(frozen=True)
class Rules:
    window: int
    select: str  # "Max" | "Min" | "Disabled"
    policies: tuple[Policy, ...]

    @classmethod
    def from_spec(cls, rules: ScalingRules) -> Rules:
        return cls(
            rules.stabilization_window_seconds,
            rules.select_policy,
            tuple(Policy(p.type, p.value, p.period_seconds) for p in rules.policies),
        )

    @property
    def longest_period(self) -> int:
        return max((p.period for p in self.policies), default=0)


@dataclass(frozen=True)
class HpaParams:
    """Everything the HPA algorithm needs, extracted once from a spec."""

    target: float
    tolerance: float
    up: Rules
    down: Rules
    min_replicas: int
    max_replicas: int

    @classmethod
    def from_spec(cls, spec: LLMRouteSpec, target: float | None = None) -> HpaParams:
        scaling = spec.scaling
        return cls(
            target=scaling.metric.target_per_replica if target is None else target,
            tolerance=scaling.tolerance,
            up=Rules.from_spec(scaling.behavior.scale_up),
            down=Rules.from_spec(scaling.behavior.scale_down),
            min_replicas=spec.proxy.min_replicas,
            max_replicas=spec.proxy.max_replicas,
        )

    @property
    def memory_seconds(self) -> int:
        return max(self.up.window, self.down.window, self.up.longest_period, self.down.longest_period)


@dataclass(frozen=True)
class Memory:
    """What the HPA remembers between decisions: recommendations and scale events, with epoch times."""

    recommendations: tuple[tuple[float, int], ...] = ()
    events: tuple[tuple[float, int], ...] = ()
    last_time: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "recs": [[round(t, 3), r] for t, r in self.recommendations],
            "events": [[round(t, 3), d] for t, d in self.events],
            "last": self.last_time,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Memory:
        return cls(
            tuple((t, int(r)) for t, r in pairs(data.get("recs")))[-MAX_MEMORY:],
            tuple((t, int(d)) for t, d in pairs(data.get("events")))[-MAX_MEMORY:],
            number(data.get("last")),
        )

    def at(self, now: float) -> Memory:
        """This memory as seen at ``now``: a time later than ``now`` (a clock that went back, a status
        restored from a backup, a leader with a clock behind its predecessor's) reads as ``now``.

        Without this, a recommendation or scale event stamped in the future stays inside every window
        until the clock reaches it: one from a day ahead would hold its count through the scale-down
        window for a day, and a scale event would skew the policy limits as long."""
        if (self.last_time is None or self.last_time <= now) and all(
            t <= now for t, _ in (*self.recommendations, *self.events)
        ):
            return self
        return Memory(
            tuple((min(t, now), r) for t, r in self.recommendations),
            tuple((min(t, now), d) for t, d in self.events),
            None if self.last_time is None else min(self.last_time, now),
        )


def usage_desired(load: float, target: float, current: int, tolerance: float) -> int:
    """HPA ``AverageValue`` rule: ``ceil(load / target)`` unless the usage ratio is within the tolerance."""
    if current <= 0:
        return count(load / target) if load > 0 else 0
    ratio = load / (target * current)
    if abs(1.0 - ratio) <= tolerance:
        return current
    return count(load / target)


def stabilize(
    memory: Memory, now: float, current: int, proposal: int, up: Rules, down: Rules, keep_seconds: int
) -> tuple[int, Memory]:
    """Apply the stabilisation windows and remember ``proposal`` (the unstabilised recommendation)."""
    memory = memory.at(now)
    up_cut, down_cut = now - up.window, now - down.window
    up_rec = down_rec = proposal
    for t, rec in memory.recommendations:
        if t > up_cut:
            up_rec = min(up_rec, rec)
        if t > down_cut:
            down_rec = max(down_rec, rec)
    result = current
    result = max(result, up_rec)
    result = min(result, down_rec)
    cut = now - keep_seconds
    recs = (*(x for x in memory.recommendations if x[0] > cut), (now, proposal))
    return result, replace(memory, recommendations=recs[-MAX_MEMORY:])


def _changed_within(events: tuple[tuple[float, int], ...], now: float, period: int) -> tuple[int, int]:
    added = deleted = 0
    cut = now - period
    for t, delta in events:
        if t > cut:
            if delta > 0:
                added += delta
            else:
                deleted -= delta
    return added, deleted


def _periods(memory: Memory, now: float, period: int) -> int:
    if memory.last_time is None:
        return 1
    return max(1, int((now - memory.last_time) // period))


def scale_up_limit(memory: Memory, now: float, current: int, rules: Rules) -> int:
    if rules.select == "Disabled":
        return current
    best: int | None = None
    for p in rules.policies:
        added, deleted = _changed_within(memory.events, now, p.period)
        start = current - added + deleted
        n = _periods(memory, now, p.period)
        if p.kind == "Pods":
            proposed = min(MAX_COUNT, start + p.value * n)
        elif start > 0 and n * math.log1p(p.value / 100) >= math.log(MAX_COUNT / start):
            proposed = MAX_COUNT  # compounding over many periods (a long pause) would overflow a float
        else:
            proposed = count(start * (1 + p.value / 100) ** n)
        if best is None:
            best = proposed
        best = min(best, proposed) if rules.select == "Min" else max(best, proposed)
    return current if best is None else best


def scale_down_limit(memory: Memory, now: float, current: int, rules: Rules) -> int:
    if rules.select == "Disabled":
        return current
    best: int | None = None
    for p in rules.policies:
        added, deleted = _changed_within(memory.events, now, p.period)
        start = current - added + deleted
        n = _periods(memory, now, p.period)
        if p.kind == "Pods":
            proposed = start - p.value * n
        else:
            proposed = math.floor(start * max(0.0, 1 - p.value / 100) ** n + 1e-9)
        if best is None:
            best = proposed
        best = max(best, proposed) if rules.select == "Min" else min(best, proposed)
    return current if best is None else best


@dataclass(frozen=True)
class Limited:
    replicas: int
    limited_by: list[str] = field(default_factory=list)


def normalize(
    memory: Memory, now: float, current: int, desired: int, up: Rules, down: Rules, lo: int, hi: int
) -> Limited:
    """Bound ``desired`` by the step policies and by ``[lo, hi]`` the way the HPA does."""
    memory = memory.at(now)
    reasons: list[str] = []
    if desired > current:
        limit = max(current, scale_up_limit(memory, now, current, up))
        top = hi
        if top > limit:
            top = limit
            if desired > limit:
                reasons.append("scaleUpPolicy")
        elif desired > hi:
            reasons.append("maxReplicas")
        result = max(lo, min(desired, top))
    elif desired < current:
        limit = min(current, scale_down_limit(memory, now, current, down))
        bottom = lo
        if bottom < limit:
            bottom = limit
            if desired < limit:
                reasons.append("scaleDownPolicy")
        elif desired < lo:
            reasons.append("minReplicas")
        result = min(hi, max(desired, bottom))
    else:
        result = desired
        if result > hi:
            result, reasons = hi, ["maxReplicas"]
        elif result < lo:
            result, reasons = lo, ["minReplicas"]
    return Limited(result, reasons)


def record(memory: Memory, now: float, current: int, final: int, keep_seconds: int) -> Memory:
    """Remember the decision time and, if the replica count changed, the scale event."""
    memory = memory.at(now)
    cut = now - keep_seconds
    events = tuple(e for e in memory.events if e[0] > cut)
    if final != current:
        events = (*events, (now, final - current))
    return replace(memory, events=events[-MAX_MEMORY:], last_time=now)


def hpa_step(
    params: HpaParams, now: float, current: int, load: float | None, memory: Memory
) -> tuple[int, Memory]:
    """One HPA reconcile on the total metric ``load`` (``None`` = no metric: keep the current count)."""
    if load is None:
        return current, replace(memory, last_time=now)
    proposal = usage_desired(load, params.target, current, params.tolerance)
    keep = params.memory_seconds
    stabilized, memory = stabilize(memory, now, current, proposal, params.up, params.down, keep)
    limited = normalize(
        memory, now, current, stabilized, params.up, params.down, params.min_replicas, params.max_replicas
    )
    return limited.replicas, record(memory, now, current, limited.replicas, keep)
