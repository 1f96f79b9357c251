"""``recommend``: how many proxy replicas, and why. Pure: ``now``, history and state are arguments.

The recommendation is built in layers, each reported in :class:`~llmroute.spec.status.Recommendation`:

1. **reactive** - the replicas that keep the short-term load (``level x burst margin``, or the last minute
   when it broke out of the noise band; :mod:`llmroute.core.nowcast`) at ``targetPerReplica x (1 +
   tolerance)`` per replica. With steady load this is the HPA's answer; with bursty load it carries a
   margin sized from the observed volatility, at most ``1 + 1.5 x tolerance`` (with the scale-up's half
   tolerance, a scale-up sizes for at most about ``1 + 2 x tolerance`` over the level). With no history
   the margin is generous, but a scale-up the load alone does not call for waits (:func:`cold_hold`).
   A scale-down is sized over a longer horizon than a scale-up (:func:`removal_need`).
2. **predictive** - the load the time-of-day profile expects over the lead time, sized the same way
   (:mod:`llmroute.core.predictive`); it only ever adds capacity. Its accuracy is learned afresh when the
   load signal changes (``scaling.metric.type``, or a Custom metric's query): forecasts in one signal's
   figures are never scored against another's.
3. **stabilisation and policies** - the HPA ``behavior`` (windows, step policies, select policy;
   :mod:`llmroute.core.hpa`) applied to the larger of the two, plus hysteresis against flapping: a scale-up
   goes half a tolerance further than strictly needed, and a scale-down waits until the stabilised
   recommendation is more than one and a half tolerances below the current count.
4. **bounds** - ``proxy.minReplicas/maxReplicas`` narrowed by the open schedules.

**Missing data never scales down.** Without fresh load data (none, or older than
``fallback.staleAfterSeconds``) it holds the current count, or raises it to ``fallback.replicas`` when
configured, says so, and records the hold as a recommendation so the scale-down window is never empty
when data returns. A missing minute (NaN) within the last ``scaleDown.stabilizationWindowSeconds`` of the
history (at least the last minute) blocks any scale-down: a scale-down needs a full window of data after
a gap, so a gap never shortens the window, and a figure that overlaps a gap (which the caller marks NaN)
is never trusted to scale down.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from llmroute.core.hpa import (
    MAX_MEMORY,
    HpaParams,
    Memory,
    Rules,
    count,
    normalize,
    record,
    scale_up_limit,
    stabilize,
)
from llmroute.core.jsonstate import number, text
from llmroute.core.nowcast import COLD_SAMPLES, Nowcast, nowcast
from llmroute.core.predictive import Accuracy, Prediction, predict
from llmroute.core.schedule import Bounds, bounds
from llmroute.core.series import FloatArray, LoadSeries
from llmroute.spec.route import LLMRouteSpec
from llmroute.spec.status import Forecast, Recommendation
from llmroute.spec.times import rfc3339

UP_MARGIN = 0.5  # x tolerance: how much further than needed a scale-up goes
DOWN_BAND = 1.5  # x tolerance: how far below the current count a scale-down must be worth
MARGIN_CAP = 1.5  # x tolerance: the largest burst margin over the level
RECOVERY_MINUTES = 180  # known minutes whose busiest one a scale-down keeps within one scale-up step
REMOVAL_HORIZON_MINUTES = 3  # minutes a scale-down must cover: until a replica bought back is serving
STATE_VERSION = 1


def iso(now: datetime) -> str:
    return rfc3339(now)


@dataclass(frozen=True)
class ScalerState:
    """What the scaler remembers between decisions (JSON-serialisable, a few KB at most)."""

    memory: Memory = field(default_factory=Memory)
    accuracy: Accuracy = field(default_factory=Accuracy)
    last_change: float | None = None
    signal: str = ""  # the load signal the accuracy was learned on (:func:`load_signal`; "" unknown)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "hpa": self.memory.to_dict(),
            "forecast": self.accuracy.to_dict(),
            "changed": self.last_change,
            "signal": self.signal,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ScalerState:
        if not data or data.get("v") != STATE_VERSION:
            return cls()
        return cls(
            Memory.from_dict(dict(data.get("hpa") or {})),
            Accuracy.from_dict(dict(data.get("forecast") or {})),
            number(data.get("changed")),
            text(data.get("signal")),
        )


def load_signal(spec: LLMRouteSpec) -> str:
    """What the load figures are: the metric type, with a digest of the query for a Custom metric."""
    metric = spec.scaling.metric
    if metric.type != "Custom":
        return metric.type
    return "Custom:" + hashlib.sha256((metric.query or "").encode()).hexdigest()[:16]


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
    hpa: HpaParams
    divisor: float  # load one replica is sized for: targetPerReplica x (1 + tolerance)
    max_margin: float  # cap on the burst margin: 1 + MARGIN_CAP x tolerance
    gap_minutes: int  # a missing minute this recent blocks scale-down (the scale-down window, >= 1)


_cache: list[_Params] = []


def _params(spec: LLMRouteSpec) -> _Params:
    if _cache and _cache[0].spec is spec:
        return _cache[0]
    target, tol = spec.scaling.metric.target_per_replica, spec.scaling.tolerance
    hpa = HpaParams.from_spec(spec)
    params = _Params(
        spec,
        hpa,
        divisor=target * (1.0 + tol),
        max_margin=1.0 + MARGIN_CAP * tol,
        gap_minutes=max(1, math.ceil(hpa.down.window / 60)),
    )
    _cache[:] = [params]
    return params


def recent_gap(values: FloatArray, minutes: int) -> bool:
    """Whether a minute is missing (NaN) among the last ``minutes`` of ``values``.

    Minutes before the first valid one are the start of the history, not a gap.
    """
    tail = values[max(0, values.shape[0] - minutes) :]
    missing = np.flatnonzero(np.isnan(tail))
    if not missing.size:
        return False
    valid = np.flatnonzero(~np.isnan(values))
    if not valid.size:
        return False
    offset = values.shape[0] - tail.shape[0]
    return bool(offset + int(missing[-1]) > int(valid[0]))


def recovery_floor(values: FloatArray, divisor: float, up: Rules, lo: int, hi: int) -> int:
    """The fewest replicas from which one minute of the scale-up policies reaches the recent peak again.

    The peak is the busiest of the last :data:`RECOVERY_MINUTES` known minutes of ``values`` (missing
    minutes skipped: a collection gap is not evidence that the load went away), sized at ``divisor`` per
    replica. A scale-down never goes below this floor, so load that comes back at once after a drop to
    (near) nothing - an outage, a pause, a partial collection bucket - finds replicas one scale-up away
    from what it needs, not two. It binds only when the count falls by more than one step can undo (x16
    within three hours with the default policies); with scale-up ``Disabled`` it is ``lo``.
    """
    known = values[~np.isnan(values)][-RECOVERY_MINUTES:]
    if not known.size or up.select == "Disabled":
        return lo
    need = min(hi, count(float(known.max()) / divisor))
    memory = Memory(last_time=0.0)
    low, high = lo, max(lo, need)
    while low < high:  # the smallest count whose one-minute step reaches ``need`` (the step is monotone)
        mid = (low + high) // 2
        if scale_up_limit(memory, 60.0, mid, up) >= need:
            high = mid
        else:
            low = mid + 1
    return low


def removal_need(values: FloatArray, divisor: float, max_margin: float) -> int | None:
    """The replicas a scale-down keeps: the burst load over :data:`REMOVAL_HORIZON_MINUTES`, at ``divisor``
    per replica, with the errors taken as the *busiest* minute of the horizon (``peak``), at most
    ``max_margin`` over the level; ``None`` without data.

    A replica added now serves from the next minute on and is sized for the load two minutes ahead (metric
    lag plus start-up). A replica removed now is gone at once and comes back only after the rise that needs
    it has shown in the metrics, been acted on and the new replica has started: one minute of lag, one of
    start-up and one decision period for a rise below the breakout band to lift the level, so the load may
    peak at any of the next three minutes. Capacity is handed back more carefully than it is bought: the
    hysteresis comes from the horizon of the decision rather than from a longer hold (the HPA's own
    ``behavior``, KEP-853, is asymmetric the same way: scale-ups act at once, scale-downs take the highest
    recommendation of a window).
    """
    nc = nowcast(values, max_margin, horizon=REMOVAL_HORIZON_MINUTES, peak=True)
    return None if nc is None else count(nc.burst_load / divisor)


def cold_hold(nc: Nowcast, divisor: float, current: int) -> bool:
    """Whether a scale-up would come from the cold-start margin alone: the margin has fewer than
    :data:`~llmroute.core.nowcast.COLD_SAMPLES` errors behind it and the load itself (the larger of the
    last minute and the level, at ``divisor`` per replica) fits the ``current`` count. With no history
    the margin is generous when the load makes llmroute scale up, but it never scales up only to be
    generous: steady traffic keeps its count instead of a scale-up and a scale-down a few minutes later."""
    return nc.samples < COLD_SAMPLES and count(max(nc.last, nc.level) / divisor) <= current


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
    lim = normalize(state.memory, t, current, desired, p.hpa.up, p.hpa.down, b.lo, b.hi)
    # the hold is a recommendation too: the scale-down window is full of it when data returns
    keep = p.hpa.memory_seconds
    recs = (*(r for r in state.memory.recommendations if r[0] > t - keep), (t, lim.replicas))
    memory = record(replace(state.memory, recommendations=recs[-MAX_MEMORY:]), t, current, lim.replicas, keep)
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
    new_state = ScalerState(memory, state.accuracy, last_change, state.signal)
    return ScalingResult(rec, forecast, new_state, None, True, None)


def recommend(
    spec: LLMRouteSpec, *, now: datetime, current_replicas: int, history: LoadSeries, state: ScalerState
) -> ScalingResult:
    """The scaling decision at ``now`` given the load ``history`` (total load in the metric's unit)."""
    p = _params(spec)
    scaling = spec.scaling
    signal = load_signal(spec)
    if state.signal not in ("", signal):  # forecasts of another signal's figures: learn afresh
        state = replace(state, accuracy=Accuracy())
    state = replace(state, signal=signal)
    t = now.timestamp()
    current = current_replicas
    b = bounds(spec, now)
    minutes = history.to_minutes()
    if minutes.end > now:
        minutes = minutes.until(now)
    stale = minutes.staleness(now)
    nc = (
        nowcast(minutes.values, p.max_margin)
        if stale is not None and stale <= scaling.fallback.stale_after_seconds
        else None
    )
    if nc is None:
        return _no_data(spec, p, now, current, state, b, stale)

    need = nc.burst_load / p.divisor
    reactive = count(need)
    pred = predict(
        scaling.predictive,
        values=minutes.values,
        start=minutes.start.timestamp(),
        now=t,
        nc=nc,
        accuracy=state.accuracy,
    )
    pred_replicas = None if pred.load is None else count(pred.load / p.divisor)
    driver = "reactive"
    if pred.active and pred_replicas is not None and pred_replicas > reactive:
        need, driver = pred.load / p.divisor if pred.load is not None else need, "predictive"
    proposal = count(need)
    notes: list[str] = []
    limited_by: list[str] = []
    if proposal < current:
        kept = removal_need(minutes.values, p.divisor, p.max_margin)
        if kept is not None and kept > proposal:
            proposal = min(current, kept)
            limited_by.append("removalHorizon")
            notes.append(f"the busiest of the next {REMOVAL_HORIZON_MINUTES} minutes may need {kept}")

    tol = scaling.tolerance
    keep = p.hpa.memory_seconds
    stabilized, memory = stabilize(state.memory, t, current, proposal, p.hpa.up, p.hpa.down, keep)
    candidate = stabilized
    if candidate > current and driver == "reactive" and cold_hold(nc, p.divisor, current):
        limited_by.append("coldStart")
        notes.append(f"no history yet: the load alone fits {current}, not scaling up only for the margin")
        candidate = current
    if candidate > current:
        candidate = max(candidate, count(need * (1.0 + UP_MARGIN * tol)))
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
        if candidate < current:
            floor = recovery_floor(minutes.values, p.divisor, p.hpa.up, b.lo, b.hi)
            if candidate < floor:
                limited_by.append("recoveryFloor")
                notes.append(
                    f"recovery floor {floor}: one scale-up step from the busiest of the last "
                    f"{RECOVERY_MINUTES} known minutes"
                )
                candidate = min(current, floor)
        if candidate < current and recent_gap(minutes.values, p.gap_minutes):
            limited_by.append("metricsGap")
            notes.append(f"a minute of the last {p.gap_minutes} has no data: no scale-down, hold {current}")
            candidate = current
    lim = normalize(memory, t, current, candidate, p.hpa.up, p.hpa.down, b.lo, b.hi)
    limited_by += _bound_reasons(lim.limited_by, b)
    memory = record(memory, t, current, lim.replicas, keep)
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
    new_state = ScalerState(memory, pred.accuracy, last_change, state.signal)
    return ScalingResult(rec, forecast, new_state, nc.last, False, nc)
