"""``recommend``: how many proxy replicas, and why. Pure: ``now``, history and state are arguments.

The recommendation is built in layers, each reported in :class:`~llmroute.spec.status.Recommendation`:

1. **reactive** - the replicas that keep the short-term load (``level x burst margin``, or the last minute
   when it broke out of the noise band; :mod:`llmroute.core.nowcast`) within the tolerance band of
   ``targetPerReplica``. With steady load this is the HPA's answer; with bursty load it carries a margin
   sized from the observed volatility.
2. **predictive** - the same sizing applied to the load the time-of-day profile expects over the lead time
   (:mod:`llmroute.core.predictive`); it only ever adds capacity.
3. **stabilisation and policies** - the HPA ``behavior`` (windows, step policies, select policy) applied to
   the larger of the two, plus hysteresis against flapping: a scale-up goes half a tolerance further than
   strictly needed, and a scale-down waits until the stabilised recommendation is more than one and a half
   tolerances below the current count.
4. **bounds** - ``proxy.minReplicas/maxReplicas`` narrowed by the open schedules.

Without fresh load data (none, or older than ``fallback.staleAfterSeconds``) it never scales down: it holds
the current count, or raises it to ``fallback.replicas`` when configured, and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from llmroute.core import hpa
from llmroute.core.jsonstate import number
from llmroute.core.nowcast import Nowcast, nowcast
from llmroute.core.predictive import Accuracy, Prediction, predict
from llmroute.core.schedule import Bounds, bounds
from llmroute.core.series import LoadSeries
from llmroute.spec.route import LLMRouteSpec
from llmroute.spec.status import Forecast, Recommendation

UP_MARGIN = 0.5  # x tolerance: how much further than needed a scale-up goes
DOWN_BAND = 1.5  # x tolerance: how far below the current count a scale-down must be worth
STATE_VERSION = 1


def iso(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ScalerState:
    """What the scaler remembers between decisions (JSON-serialisable, a few KB at most)."""

    memory: hpa.Memory = field(default_factory=hpa.Memory)
    accuracy: Accuracy = field(default_factory=Accuracy)
    last_change: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "hpa": self.memory.to_dict(),
            "forecast": self.accuracy.to_dict(),
            "changed": self.last_change,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ScalerState:
        if not data or data.get("v") != STATE_VERSION:
            return cls()
        return cls(
            hpa.Memory.from_dict(dict(data.get("hpa") or {})),
            Accuracy.from_dict(dict(data.get("forecast") or {})),
            number(data.get("changed")),
        )


@dataclass(frozen=True)
class ScalingResult:
    recommendation: Recommendation
    forecast: Forecast
    state: ScalerState
    load: float | None = None
    stale: bool = False
    nowcast: Nowcast | None = None


@dataclass(frozen=True)
class _Params:
    spec: LLMRouteSpec
    hpa: hpa.HpaParams
    divisor: float


_cache: list[_Params] = []


def _params(spec: LLMRouteSpec) -> _Params:
    if _cache and _cache[0].spec is spec:
        return _cache[0]
    target = spec.scaling.metric.target_per_replica
    params = _Params(spec, hpa.HpaParams.from_spec(spec), target * (1.0 + spec.scaling.tolerance))
    _cache[:] = [params]
    return params


def _bound_reasons(reasons: list[str], b: Bounds) -> list[str]:
    out: list[str] = []
    for r in reasons:
        if r == "maxReplicas" and b.max_from and b.hi == b.schedule_max:
            out.append("scheduleMax:" + ",".join(b.max_from))
        elif r == "minReplicas" and b.min_from and b.lo == b.schedule_min:
            out.append("scheduleMin:" + ",".join(b.min_from))
        else:
            out.append(r)
    return out


def _forecast(
    now: datetime, spec: LLMRouteSpec, pred: Prediction | None, replicas: int | None, reason: str
) -> Forecast:
    err = None if pred is None else pred.accuracy.error_percent
    return Forecast(
        time=iso(now),
        horizon_seconds=spec.scaling.predictive.lead_time_seconds,
        value=None if pred is None or pred.value is None else round(pred.value, 6),
        replicas=replicas,
        error_percent=None if err is None else round(err, 3),
        active=bool(pred is not None and pred.active),
        reason=reason if pred is None else pred.reason,
    )


def _no_data(
    spec: LLMRouteSpec,
    p: _Params,
    now: datetime,
    current: int,
    state: ScalerState,
    b: Bounds,
    stale: float | None,
) -> ScalingResult:
    fb = spec.scaling.fallback
    t = now.timestamp()
    floor = current
    if fb.when_metrics_unavailable == "Replicas" and fb.replicas is not None:
        floor = max(current, fb.replicas)
    desired = max(floor, b.lo)
    lim = hpa.normalize(state.memory, t, current, desired, p.hpa.up, p.hpa.down, b.lo, b.hi)
    memory = hpa.record(state.memory, t, current, lim.replicas, p.hpa.memory_seconds)
    why = (
        "no load data yet"
        if stale is None
        else (f"load data {stale:.0f} s old (staleAfterSeconds {fb.stale_after_seconds})")
    )
    if fb.when_metrics_unavailable == "Replicas" and fb.replicas is not None:
        action = f"fallback: at least {fb.replicas} replicas, never scaling down without data"
    else:
        action = f"holding {current} replicas, never scaling down without data"
    reasons = ["noData", *_bound_reasons(lim.limited_by, b)]
    rec = Recommendation(
        time=iso(now),
        schedule_min=b.schedule_min,
        schedule_max=b.schedule_max,
        final=lim.replicas,
        reason=f"{why}: {action} -> {lim.replicas}",
        limited_by=reasons,
    )
    forecast = _forecast(now, spec, None, None, "no load data")
    last_change = t if lim.replicas != current else state.last_change
    new_state = ScalerState(memory, state.accuracy, last_change)
    return ScalingResult(rec, forecast, new_state, None, True, None)


def recommend(
    spec: LLMRouteSpec, *, now: datetime, current_replicas: int, history: LoadSeries, state: ScalerState
) -> ScalingResult:
    """The scaling decision at ``now`` given the load ``history`` (total load in the metric's unit)."""
    p = _params(spec)
    scaling = spec.scaling
    t = now.timestamp()
    current = current_replicas
    b = bounds(spec, now)
    minutes = history.to_minutes()
    if minutes.end > now:
        minutes = minutes.until(now)
    stale = minutes.staleness(now)
    nc = (
        nowcast(minutes.values)
        if stale is not None and stale <= scaling.fallback.stale_after_seconds
        else None
    )
    if nc is None:
        return _no_data(spec, p, now, current, state, b, stale)

    need = nc.burst_load / p.divisor
    reactive = math.ceil(need - 1e-9)
    pred = predict(
        scaling.predictive,
        values=minutes.values,
        start=minutes.start.timestamp(),
        now=t,
        nc=nc,
        accuracy=state.accuracy,
    )
    pred_replicas = None if pred.load is None else math.ceil(pred.load / p.divisor - 1e-9)
    driver = "reactive"
    if pred.active and pred_replicas is not None and pred_replicas > reactive:
        need, driver = pred.load / p.divisor if pred.load is not None else need, "predictive"
    proposal = math.ceil(need - 1e-9)

    tol = scaling.tolerance
    keep = p.hpa.memory_seconds
    stabilized, memory = hpa.stabilize(state.memory, t, current, proposal, p.hpa.up, p.hpa.down, keep)
    notes: list[str] = []
    limited_by: list[str] = []
    candidate = stabilized
    if candidate > current:
        candidate = max(candidate, math.ceil(need * (1.0 + UP_MARGIN * tol) - 1e-9))
        # remember what was decided, margin included, so the scale-down window protects all of it
        memory = replace(memory, recommendations=(*memory.recommendations[:-1], (t, candidate)))
    else:
        if proposal < candidate:
            limited_by.append("scaleDownStabilization")
            notes.append(f"scale-down window {p.hpa.down.window}s holds {candidate}")
        band = DOWN_BAND * tol
        if current * (1.0 - band) < candidate < current:
            limited_by.append("tolerance")
            notes.append(f"{candidate} is within {band:.0%} of {current}: hold")
            candidate = current
    lim = hpa.normalize(memory, t, current, candidate, p.hpa.up, p.hpa.down, b.lo, b.hi)
    limited_by += _bound_reasons(lim.limited_by, b)
    memory = hpa.record(memory, t, current, lim.replicas, keep)
    last_change = t if lim.replicas != current else state.last_change

    target = scaling.metric.target_per_replica
    reason = (
        f"{driver}: load {nc.last:.4g} (level {nc.level:.4g}, burst margin x{nc.margin:.2f}) needs {proposal}"
        f" at {target:g}/replica within {tol:.0%}"
    )
    if pred.growth is not None:
        reason += f"; predictive {'acts' if pred.active else 'idle'}: {pred.reason}"
    if notes:
        reason += "; " + "; ".join(notes)
    if lim.limited_by:
        reason += "; limited by " + ", ".join(_bound_reasons(lim.limited_by, b))
    reason += f" -> {lim.replicas}"
    rec = Recommendation(
        time=iso(now),
        reactive=reactive,
        predictive=pred_replicas,
        schedule_min=b.schedule_min,
        schedule_max=b.schedule_max,
        final=lim.replicas,
        reason=reason,
        limited_by=limited_by,
    )
    forecast = _forecast(now, spec, pred, pred_replicas, pred.reason)
    new_state = ScalerState(memory, pred.accuracy, last_change)
    return ScalingResult(rec, forecast, new_state, nc.last, False, nc)
