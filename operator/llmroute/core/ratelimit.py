"""``plan``: the effective per-tier limits right now, and each proxy replica's share of them.

* **Time of day** - a tier's global limits are multiplied by the open ``rateLimits.schedules`` window that
  applies to it. When several overlap, the most specific wins (a window naming the tier beats one for all
  tiers), then the first listed.
* **Replica-aware division** - each replica gets ``floor(global / divisor)`` where the divisor is the larger
  of the current and desired replica counts, but never less than 1 a minute: a non-zero limit never rounds
  to zero (which would refuse every request, forever). During a scale-up the old replicas already enforce
  the new, smaller share; during a scale-down the leaving replicas keep counting until they are gone. The
  sum of shares never exceeds the global figure except through that floor: a global limit below the
  divisor admits up to ``divisor`` a minute across the replicas (over-admission ``divisor / global``);
  use the Redis store for small exact limits.
* **Adaptive shedding** - at the replica ceiling (``proxy.maxReplicas``, or the lower ``maxReplicas`` of an
  open scaling schedule: no replica can be added) with utilisation above ``saturationThreshold``, the lowest
  priority sheddable tier is tightened by ``stepFactor`` (at most one step a minute), then the next one up;
  a factor that would fall below 5 % goes straight to ``minFactor``. Tiers with the highest priority present
  are what shedding protects and are never shed. Once utilisation has stayed below ``restoreThreshold`` for
  ``restoreAfterSeconds``, tiers are restored one step a minute in reverse order (most important first).
  Missing utilisation neither sheds nor restores. A tier shed deeper than the current ``stepFactor`` and
  ``minFactor`` reach (they were changed meanwhile) restores from their deepest level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from llmroute.core.jsonstate import integer, number
from llmroute.core.windows import is_open
from llmroute.spec.ratelimit import AdaptiveShedding, LimitSchedule, Tier
from llmroute.spec.route import LLMRouteSpec
from llmroute.spec.status import EffectiveLimit

STEP_SECONDS = 60.0
SNAP_BELOW = 0.05
MAX_LEVEL = 64


@dataclass(frozen=True)
class ShedState:
    """Shed level per tier (0 = untouched), the calm period start, the last step, the last multipliers."""

    levels: Mapping[str, int] = field(default_factory=dict)
    calm_since: float | None = None
    last_step: float | None = None
    multipliers: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": {k: v for k, v in sorted(self.levels.items()) if v},
            "calm": self.calm_since,
            "step": self.last_step,
            "mult": {k: v for k, v in sorted(self.multipliers.items()) if v != 1.0},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ShedState:
        if not data:
            return cls()
        levels = data.get("levels") if isinstance(data.get("levels"), dict) else {}
        mult = data.get("mult") if isinstance(data.get("mult"), dict) else {}
        return cls(
            {str(k): min(MAX_LEVEL, max(0, integer(v, 0))) for k, v in (levels or {}).items()},
            number(data.get("calm")),
            number(data.get("step")),
            {str(k): number(v, 1.0) or 1.0 for k, v in (mult or {}).items()},
        )


@dataclass(frozen=True)
class RateLimitPlan:
    limits: list[EffectiveLimit]
    divisor: int
    state: ShedState
    events: list[str]


def shed_factor(level: int, shedding: AdaptiveShedding) -> float:
    """The multiplier a tier gets at shed ``level``."""
    if level <= 0:
        return 1.0
    factor = shedding.step_factor**level
    if factor < SNAP_BELOW or factor <= shedding.min_factor:
        return shedding.min_factor
    return factor


def max_level(shedding: AdaptiveShedding) -> int:
    level = 0
    while level < MAX_LEVEL and shed_factor(level, shedding) > shedding.min_factor:
        level += 1
    return level


def multiplier(tier: str, schedules: list[LimitSchedule], now: datetime) -> tuple[float, str | None]:
    """The schedule multiplier for ``tier`` at ``now`` and the window it came from."""
    general: LimitSchedule | None = None
    for window in schedules:
        if window.tiers and tier not in window.tiers:
            continue
        if not is_open(window, now):
            continue
        if window.tiers:
            return window.multiplier, window.name
        if general is None:
            general = window
    return (general.multiplier, general.name) if general else (1.0, None)


def sheddable_order(tiers: list[Tier]) -> list[Tier]:
    """Tiers that may be shed, least important first (declaration order breaks ties)."""
    if not tiers:
        return []
    top = max(t.priority for t in tiers)
    candidates = [t for t in tiers if t.sheddable and t.priority < top]
    return sorted(candidates, key=lambda t: t.priority)


def share(total: int, divisor: int) -> int:
    """One replica's share of ``total`` a minute: ``floor(total / divisor)``, but at least 1 when ``total``
    is (a non-zero limit must never round to zero)."""
    return max(1, total // max(1, divisor)) if total > 0 else 0


def scaled(value: int, *factors: float) -> int:
    """``value`` times ``factors`` (time-of-day multiplier, shed factor), rounded down but never a positive
    value to zero while every factor is positive, however small their product (which may underflow to 0.0);
    a factor of 0 (a tier shed entirely) gives 0."""
    if value <= 0 or any(f <= 0 for f in factors):
        return 0
    return max(1, math.floor(math.prod(factors, start=value) + 1e-9))


def significant(factor: float) -> float:
    """``factor`` to six significant digits (as status shows it): a positive factor stays positive."""
    return float(f"{factor:.6g}")


def _share(value: int | None, factors: tuple[float, float], divisor: int) -> tuple[int | None, int | None]:
    if value is None:
        return None, None
    total = scaled(value, *factors)
    return total, share(total, divisor)


def _shed_step(
    spec: LLMRouteSpec, now: float, utilisation: float | None, at_max: bool, state: ShedState
) -> tuple[ShedState, list[str]]:
    sh = spec.rate_limits.adaptive_shedding
    order = sheddable_order(spec.rate_limits.tiers)
    top = max_level(sh)
    # a level beyond the deepest of the current stepFactor/minFactor (shed under others) has the same
    # factor as the deepest: counted from there, the first restore step shows at once, not many minutes on
    levels = {t.name: min(top, state.levels.get(t.name, 0)) for t in order}
    events: list[str] = []
    if not sh.enabled:
        if any(levels.values()):
            events.append("adaptive shedding disabled: every tier restored")
        return replace(state, levels={}, calm_since=None), events
    if utilisation is None or not order:
        # no reading is no calm: the calm clock of a restore starts again from the next reading below the
        # threshold, so a metrics gap never counts towards restoreAfterSeconds
        calm = state.calm_since if utilisation is not None else None
        return replace(state, levels={k: v for k, v in levels.items() if v}, calm_since=calm), events
    # a time stamped after now (a clock that went back, a restored status) reads as now: from a day ahead
    # it would hold every step, and the calm clock of a restore, for a day
    last_step = None if state.last_step is None else min(state.last_step, now)
    calm_since = None if state.calm_since is None else min(state.calm_since, now)
    paced = last_step is None or now - last_step >= STEP_SECONDS
    if at_max and utilisation > sh.saturation_threshold:
        calm_since = None
        victim = next((t for t in order if levels[t.name] < top), None)
        if paced and victim is not None:
            levels[victim.name] += 1
            last_step = now
            f = shed_factor(levels[victim.name], sh)
            events.append(
                f"shedding tier {victim.name} (priority {victim.priority}) to {f:.0%} of its limits: "
                f"utilisation {utilisation:.0%} above {sh.saturation_threshold:.0%} at the replica ceiling"
            )
    elif utilisation < sh.restore_threshold:
        calm_since = now if calm_since is None else calm_since
        shed = [t for t in reversed(order) if levels[t.name] > 0]
        if shed and paced and now - calm_since >= sh.restore_after_seconds:
            tier = shed[0]
            levels[tier.name] -= 1
            last_step = now
            f = shed_factor(levels[tier.name], sh)
            events.append(
                f"restoring tier {tier.name} (priority {tier.priority}) to {f:.0%} of its limits: "
                f"utilisation {utilisation:.0%} below {sh.restore_threshold:.0%} "
                f"for {now - calm_since:.0f}s"
            )
    else:
        calm_since = None
    kept = {k: v for k, v in levels.items() if v}
    return replace(state, levels=kept, calm_since=calm_since, last_step=last_step), events


def plan(
    spec: LLMRouteSpec,
    *,
    now: datetime,
    current_replicas: int,
    desired_replicas: int,
    utilisation: float | None,
    at_max: bool,
    state: ShedState,
) -> RateLimitPlan:
    """Effective limits at ``now``; ``utilisation`` is load over capacity (1.0 = saturated) or ``None``;
    ``at_max``: no replica can be added (:func:`llmroute.core.schedule.at_ceiling`)."""
    divisor = max(1, current_replicas, desired_replicas)
    t = now.timestamp()
    state, events = _shed_step(spec, t, utilisation, at_max, state)
    sh = spec.rate_limits.adaptive_shedding
    limits: list[EffectiveLimit] = []
    multipliers: dict[str, float] = {}
    for tier in spec.rate_limits.tiers:
        mult, window = multiplier(tier.name, spec.rate_limits.schedules, now)
        multipliers[tier.name] = mult
        before = state.multipliers.get(tier.name, 1.0)
        if mult != before:
            where = f"window {window}" if window else "no window"
            events.append(f"tier {tier.name} limits x{mult:g} (was x{before:g}): {where}")
        factor = shed_factor(state.levels.get(tier.name, 0), sh)
        rpm, rpm_share = _share(tier.requests_per_minute, (mult, factor), divisor)
        tpm, tpm_share = _share(tier.tokens_per_minute, (mult, factor), divisor)
        limits.append(
            EffectiveLimit(
                tier=tier.name,
                requests_per_minute=rpm,
                tokens_per_minute=tpm,
                per_replica_requests_per_minute=rpm_share,
                per_replica_tokens_per_minute=tpm_share,
                multiplier=mult,
                shed_factor=significant(factor),
            )
        )
    state = replace(state, multipliers={k: v for k, v in multipliers.items() if v != 1.0})
    return RateLimitPlan(limits, divisor, state, events)
