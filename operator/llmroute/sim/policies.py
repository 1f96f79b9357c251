"""Scaling policies the simulator compares, each turning demand into a replica count per minute.

* ``llmroute`` - :func:`llmroute.core.recommend` (and :func:`llmroute.core.plan` when the route has tiers),
  exactly as the operator calls them, once a minute.
* ``hpa`` - the Kubernetes HPA algorithm (:func:`llmroute.core.hpa_step`) with the route's behaviour,
  bounds and tolerance and a target of ``u x capacity`` per replica.
* ``static`` - the replicas the busiest minute needs, all the time.
* ``oracle`` - perfect foresight: each minute exactly the replicas its demand needs (a missing minute: the
  last known need), started early enough to be ready in time. The physical limit.

The decision for minute ``t`` sees the demand of minutes ``< t`` only (one minute of metrics lag), so a
run on a trace cut at minute ``T`` makes the same decisions up to ``T`` as a run on the whole trace. Every
policy starts the trace with the replicas its own rule gives for the first minute's load, all ready.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TextIO

import numpy as np

from llmroute.core.hpa import HpaParams, Memory, count, hpa_step
from llmroute.core.ratelimit import ShedState, plan
from llmroute.core.scaling import ScalerState, recommend
from llmroute.core.schedule import at_ceiling
from llmroute.core.series import MINUTE, FloatArray, LoadSeries
from llmroute.sim.capacity import CapacityModel, IntArray, lead_minutes, needed
from llmroute.spec.route import LLMRouteSpec
from llmroute.spec.status import EffectiveLimit

Progress = Callable[[str, int, int], None]


@dataclass
class PolicyRun:
    """One policy's replica counts, plus per-minute details when the policy explains itself."""

    name: str
    desired: IntArray
    reasons: list[str] = field(default_factory=list)
    columns: dict[str, list[float | int | str | None]] = field(default_factory=dict)


def _first(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def _clamp(value: int, spec: LLMRouteSpec) -> int:
    return max(spec.proxy.min_replicas, min(spec.proxy.max_replicas, value))


def stderr_progress(stream: TextIO = sys.stderr, every: float = 0.2) -> Progress:
    """A progress callback printing ``name: done/total`` lines at every ``every`` fraction."""
    marks: dict[str, float] = {}

    def report(name: str, done: int, total: int) -> None:
        frac = done / total if total else 1.0
        if frac >= marks.get(name, 0.0) + every - 1e-9 or done == total:
            marks[name] = frac
            print(f"  {name}: {done}/{total} ({frac:.0%})", file=stream, flush=True)

    return report


def _limit_columns(
    limits: list[EffectiveLimit], row: int, n: int, cols: dict[str, list[float | int | str | None]]
) -> None:
    for lim in limits:
        for key, value in (
            (f"limit_{lim.tier}_rpm", lim.requests_per_minute),
            (f"limit_{lim.tier}_rpm_per_replica", lim.per_replica_requests_per_minute),
            (f"limit_{lim.tier}_tpm", lim.tokens_per_minute),
            (f"limit_{lim.tier}_shed_factor", lim.shed_factor),
        ):
            cols.setdefault(key, [None] * n)[row] = value


def run_llmroute(
    spec: LLMRouteSpec,
    demand: FloatArray,
    start: datetime,
    model: CapacityModel,
    *,
    progress: Progress | None = None,
    detail: bool = True,
) -> PolicyRun:
    """Replay ``demand`` (req/s per minute from ``start``) through :func:`recommend` and :func:`plan`."""
    n = int(demand.shape[0])
    target = spec.scaling.metric.target_per_replica
    desired = np.zeros(n, dtype=np.int64)
    current = _clamp(count(_first(demand[0]) / target), spec) if n else 0
    reasons: list[str] = []
    cols: dict[str, list[float | int | str | None]] = {"reactive": [None] * n, "predictive": [None] * n}
    state = ScalerState()
    shed = ShedState()
    tiers = bool(spec.rate_limits.tiers)
    step = max(1, n // 50)
    for t in range(n):
        now = start + timedelta(minutes=t)
        if t > 0:
            history = LoadSeries(start, MINUTE, demand[:t])
            result = recommend(spec, now=now, current_replicas=current, history=history, state=state)
            state = result.state
            rec = result.recommendation
            new = rec.final
            if detail:
                reasons.append(rec.reason)
                cols["reactive"][t] = rec.reactive
                cols["predictive"][t] = rec.predictive
        else:
            new = current
            if detail:
                reasons.append("start: replicas for the first minute's load, all ready")
        if tiers:
            prev = int(desired[t - 1]) if t else current
            seen = float(demand[t - 1] if t else demand[0])
            known = prev > 0 and not math.isnan(seen)  # a missing minute neither sheds nor restores
            util = seen / (max(prev, new) * model.capacity_rps) if known else None  # as the operator
            limits = plan(
                spec,
                now=now,
                current_replicas=prev,
                desired_replicas=new,
                utilisation=util,
                at_max=at_ceiling(spec, now, new),
                state=shed,
            )
            shed = limits.state
            if detail:
                _limit_columns(limits.limits, t, n, cols)
        desired[t] = new
        current = new
        if progress is not None and (t % step == 0 or t == n - 1):
            progress("llmroute", t + 1, n)
    return PolicyRun("llmroute", desired, reasons if detail else [], cols if detail else {})


def run_hpa(
    spec: LLMRouteSpec,
    demand: FloatArray,
    start: datetime,
    model: CapacityModel,
    utilisation: float,
    *,
    name: str = "hpa",
) -> PolicyRun:
    """The Kubernetes HPA with a target of ``utilisation x capacity`` per replica, fed the lagged load."""
    params = HpaParams.from_spec(spec, target=utilisation * model.capacity_rps)
    n = int(demand.shape[0])
    desired = np.zeros(n, dtype=np.int64)
    current = _clamp(count(_first(demand[0]) / params.target), spec) if n else 0
    memory = Memory()
    t0 = start.timestamp()
    values = demand.tolist()
    for t in range(n):
        if t > 0:
            load = values[t - 1]
            current, memory = hpa_step(params, t0 + 60.0 * t, current, None if load != load else load, memory)
        desired[t] = current
    return PolicyRun(name, desired)


def run_static(spec: LLMRouteSpec, demand: FloatArray, model: CapacityModel) -> PolicyRun:
    """Peak provisioning: the replicas the busiest minute needs, every minute."""
    need = needed(demand, model.capacity_rps)
    peak = _clamp(int(need.max()) if need.size else 0, spec)
    return PolicyRun("static", np.full(demand.shape[0], peak, dtype=np.int64))


def run_oracle(spec: LLMRouteSpec, demand: FloatArray, model: CapacityModel) -> PolicyRun:
    """Perfect foresight: replicas started ``startup`` ahead so each minute has exactly what it needs.

    A missing minute (NaN) is unknown demand, not zero: the oracle holds the need of the last known minute
    through it, as every causal policy must (none may scale down without data).
    """
    known = ~np.isnan(demand)
    filled = demand[np.maximum.accumulate(np.where(known, np.arange(demand.shape[0]), 0))]
    need = needed(filled, model.capacity_rps)
    ahead = lead_minutes(model.startup_seconds)
    n = int(need.shape[0])
    desired = need.copy()
    for k in range(1, min(ahead, n - 1) + 1):  # a start-up longer than the trace: every minute ahead
        desired[: n - k] = np.maximum(desired[: n - k], need[k:])
    lo, hi = spec.proxy.min_replicas, spec.proxy.max_replicas
    return PolicyRun("oracle", np.clip(desired, lo, hi).astype(np.int64))
