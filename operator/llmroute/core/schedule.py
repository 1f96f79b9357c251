"""Replica bounds at an instant: ``proxy.minReplicas/maxReplicas`` narrowed by the open scaling schedules.

Overlapping schedules combine to the tightest bounds: the largest ``minReplicas`` and the smallest
``maxReplicas`` of the open windows. If that leaves the minimum above the maximum, the minimum wins
(availability over cost), though never above ``proxy.maxReplicas``, and ``conflict`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from llmroute.core.windows import open_windows
from llmroute.spec.route import LLMRouteSpec


@dataclass(frozen=True)
class Bounds:
    lo: int
    hi: int
    schedule_min: int | None = None
    schedule_max: int | None = None
    min_from: list[str] = field(default_factory=list)
    max_from: list[str] = field(default_factory=list)
    conflict: bool = False


def bounds(spec: LLMRouteSpec, now: datetime) -> Bounds:
    """The replica bounds in force at ``now``."""
    lo, hi = spec.proxy.min_replicas, spec.proxy.max_replicas
    if not spec.scaling.schedules:
        return Bounds(lo, hi)
    active = open_windows(spec.scaling.schedules, now)
    mins = [s.min_replicas for s in active if s.min_replicas is not None]
    maxs = [s.max_replicas for s in active if s.max_replicas is not None]
    smin = max(mins) if mins else None
    smax = min(maxs) if maxs else None
    min_from = [s.name for s in active if s.min_replicas is not None and s.min_replicas == smin]
    max_from = [s.name for s in active if s.max_replicas is not None and s.max_replicas == smax]
    if smin is not None:
        lo = max(lo, smin)
    if smax is not None:
        hi = min(hi, smax)
    conflict = lo > hi
    if conflict:  # a schedule minimum beats a schedule maximum, never proxy.maxReplicas
        hi = min(lo, spec.proxy.max_replicas)
        lo = hi
    return Bounds(lo, hi, smin, smax, min_from, max_from, conflict)


def at_ceiling(spec: LLMRouteSpec, now: datetime, desired: int) -> bool:
    """Whether ``desired`` replicas is as many as the route may have at ``now``: ``proxy.maxReplicas``, or
    the lower ceiling of an open schedule (adaptive shedding acts there: no replica can be added)."""
    return desired >= bounds(spec, now).hi
