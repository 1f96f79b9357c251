"""HPA's cost frontier and where llmroute stands against it.

The ``hpa`` policy is swept over target utilisations; each run gives (replica-minutes, under-provisioned
minutes). HPA's under-provisioned minutes are interpolated linearly at llmroute's replica-minutes, so the
two are compared at the same cost. The measured targets: llmroute has at most 0.8x HPA's under-provisioned
minutes at that cost, costs at most 1.35x the oracle's replica-minutes, and makes no more than twice the
scale events per hour of HPA at llmroute's own target utilisation.

A ratio whose denominator is 0 (HPA never under-provisioned at that cost, HPA never scaling, an oracle
without replicas) is no ratio: its check carries a ``note`` saying so, its JSON ``value`` is ``null`` and
the text shows ``n/a``. The check is met when llmroute's figure is 0 too, and missed otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmroute.sim.capacity import PolicyMetrics

DEFAULT_SWEEP = (0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975)
UNDER_RATIO_MAX = 0.8
COST_RATIO_MAX = 1.35
EVENTS_RATIO_MAX = 2.0


@dataclass(frozen=True)
class FrontierPoint:
    utilisation: float
    metrics: PolicyMetrics


@dataclass(frozen=True)
class TargetCheck:
    """One of the measured targets: ``value`` against ``limit`` (at most), and whether it is met; ``note``
    when the value is no ratio (its denominator is 0: ``value`` is then 0 or infinite)."""

    name: str
    value: float
    limit: float
    ok: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        value = round(self.value, 4) if math.isfinite(self.value) and not self.note else None
        return {"value": value, "limit": self.limit, "ok": self.ok} | (
            {"note": self.note} if self.note else {}
        )


@dataclass(frozen=True)
class Comparison:
    """llmroute against HPA's frontier and the oracle."""

    points: list[FrontierPoint]
    llmroute: PolicyMetrics
    oracle: PolicyMetrics
    hpa_at_target: PolicyMetrics
    target_utilisation: float
    hpa_under_at_cost: float
    in_range: bool
    checks: list[TargetCheck]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "hpa_sweep": [
                {"utilisation": p.utilisation, **p.metrics.as_dict()} for p in sorted(self.points, key=_u)
            ],
            "hpa_under_provisioned_at_llmroute_cost": round(self.hpa_under_at_cost, 3),
            "llmroute_cost_within_sweep": self.in_range,
            "target_utilisation": self.target_utilisation,
            "checks": {c.name: c.as_dict() for c in self.checks},
            "ok": self.ok,
        }


def _u(p: FrontierPoint) -> float:
    return p.utilisation


def interpolate(points: list[FrontierPoint], replica_minutes: float) -> tuple[float, bool]:
    """HPA's under-provisioned minutes at ``replica_minutes`` (linear; clamped at the sweep's ends)."""
    pts = sorted(points, key=lambda p: (p.metrics.replica_minutes, -p.metrics.under_minutes))
    xs = np.array([p.metrics.replica_minutes for p in pts])
    ys = np.array([float(p.metrics.under_minutes) for p in pts])
    inside = bool(xs.size and xs[0] <= replica_minutes <= xs[-1])
    return float(np.interp(replica_minutes, xs, ys)), inside


def compare(
    points: list[FrontierPoint], llmroute: PolicyMetrics, oracle: PolicyMetrics, target_utilisation: float
) -> Comparison:
    """Build the comparison; ``target_utilisation`` picks the HPA run whose scale events are the yardstick."""
    hpa_under, inside = interpolate(points, llmroute.replica_minutes)
    nearest = min(points, key=lambda p: abs(p.utilisation - target_utilisation))
    at_target, hpa = nearest.metrics, f"HPA(u={nearest.utilisation:g})"
    under_ratio, under_note = _ratio(
        llmroute.under_minutes,
        hpa_under,
        "neither llmroute nor HPA at the same cost is under-provisioned",
        f"HPA at the same cost is never under-provisioned, llmroute is {llmroute.under_minutes} minute(s)",
    )
    cost_ratio, cost_note = _ratio(
        llmroute.replica_minutes,
        oracle.replica_minutes,
        "no policy runs a replica",
        "the oracle runs no replica",
    )
    events_ratio, events_note = _ratio(
        llmroute.events_per_hour,
        at_target.events_per_hour,
        f"neither llmroute nor {hpa} scales",
        f"{hpa} never scales, llmroute does {llmroute.scale_events} time(s)",
    )
    checks = [
        TargetCheck(
            "under_provisioned_vs_hpa_same_cost",
            under_ratio,
            UNDER_RATIO_MAX,
            under_ratio <= UNDER_RATIO_MAX,
            under_note,
        ),
        TargetCheck(
            "replica_minutes_vs_oracle", cost_ratio, COST_RATIO_MAX, cost_ratio <= COST_RATIO_MAX, cost_note
        ),
        TargetCheck(
            "scale_events_vs_hpa_at_target",
            events_ratio,
            EVENTS_RATIO_MAX,
            events_ratio <= EVENTS_RATIO_MAX,
            events_note,
        ),
    ]
    return Comparison(points, llmroute, oracle, at_target, target_utilisation, hpa_under, inside, checks)


def _ratio(value: float, base: float, both_zero: str, base_zero: str) -> tuple[float, str]:
    """``value / base``, or when ``base`` is 0: 0 or infinity with the note saying why there is no ratio."""
    if base > 0:
        return value / base, ""
    if value == 0:
        return 0.0, f"no ratio: {both_zero}"
    return math.inf, f"no ratio: {base_zero}"
