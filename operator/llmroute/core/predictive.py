"""Predictive scaling: when it may act, what it forecasts, and how its accuracy is tracked.

The forecast is the peak load (highest 3-minute mean) of the next ``leadTimeSeconds``: the peak of the last
ten minutes times the typical growth on comparable past days (see :mod:`llmroute.core.profile`). Prediction
sizes for the reactive load ``x (1 + rise)``, where the rise is the *assured* growth minus one, shrunk by
``n / (n + 0.5)`` when it rests on ``n`` past days, and never above what the profile's own level supports
(the highest peak those days reached, times the burst margin). It acts only when

* it is enabled and in ``Active`` mode (``ForecastOnly`` reports the same numbers without acting);
* the history spans at least ``minHistoryHours``;
* at least :data:`MIN_DAYS` comparable past days agree (a growth factor is never learned from one day);
* its recent accuracy is good enough: every forecast is remembered until its window has passed and then
  scored; the weighted absolute percentage error (WAPE) decays with a six-hour half-life. Above
  ``maxErrorPercent`` prediction steps back; it comes back once the error is below 80 % of that limit.
  When prediction first becomes possible its accuracy is seeded by back-testing the last hours.

Prediction only ever *adds* capacity on top of the reactive recommendation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from llmroute.core.jsonstate import number, pairs
from llmroute.core.nowcast import Nowcast
from llmroute.core.profile import BASE_MINUTES, DAY_MINUTES, Growth, current_level, growth, peak, recent_peak
from llmroute.core.series import FloatArray
from llmroute.spec.scaling import Predictive

HALF_LIFE_SECONDS = 6 * 3600.0
BACKTEST_POINTS = 12
BACKTEST_SPACING_MINUTES = 30
REENGAGE_FACTOR = 0.8
MAX_PENDING = 48
SHRINK_DAYS = 0.5  # a rise seen on n past days counts n / (n + SHRINK_DAYS) of its size
MIN_DAYS = 2  # comparable past days a prediction needs before it may act


@dataclass(frozen=True)
class Accuracy:
    """Decayed sums behind the WAPE, forecasts waiting to be scored, and whether prediction stepped back."""

    error_sum: float = 0.0
    actual_sum: float = 0.0
    updated: float | None = None
    pending: tuple[tuple[float, float], ...] = ()
    stepped_back: bool = False

    @property
    def error_percent(self) -> float | None:
        return 100.0 * self.error_sum / self.actual_sum if self.actual_sum > 0 else None

    def to_dict(self) -> dict[str, object]:
        return {
            "err": round(self.error_sum, 6),
            "act": round(self.actual_sum, 6),
            "at": self.updated,
            "pending": [[round(t, 3), round(v, 6)] for t, v in self.pending],
            "back": self.stepped_back,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Accuracy:
        return cls(
            error_sum=max(0.0, number(data.get("err"), 0.0) or 0.0),
            actual_sum=max(0.0, number(data.get("act"), 0.0) or 0.0),
            updated=number(data.get("at")),
            pending=tuple(pairs(data.get("pending")))[-MAX_PENDING:],
            stepped_back=data.get("back") is True,
        )


@dataclass(frozen=True)
class Prediction:
    """Outcome of the predictive step.

    ``value`` is the forecast peak load over the lead time; ``load`` the load prediction would size for
    (the reactive load ``x (1 + rise)``, bounded by the profile's level), reported even when it does not
    act; ``active`` says whether it acts.
    """

    value: float | None
    load: float | None
    growth: Growth | None
    active: bool
    reason: str
    accuracy: Accuracy


def _score(acc: Accuracy, now: float, forecast: float, actual: float) -> Accuracy:
    decay = 1.0 if acc.updated is None else 0.5 ** (max(0.0, now - acc.updated) / HALF_LIFE_SECONDS)
    return replace(
        acc,
        error_sum=acc.error_sum * decay + abs(forecast - actual),
        actual_sum=acc.actual_sum * decay + abs(actual),
        updated=now,
    )


def _mature(acc: Accuracy, values: FloatArray, start: float, now: float, lead: int) -> Accuracy:
    """Score the forecasts whose window has passed; keep the others. A forecast stamped after ``now`` (a
    clock that went back, a restored status) is dropped: it could not be scored until the clock reached it,
    and while it was the newest no new forecast would be recorded, freezing the accuracy as long."""
    if acc.updated is not None and acc.updated > now:
        acc = replace(acc, updated=now)
    keep: list[tuple[float, float]] = []
    n = values.shape[0]
    for t, forecast in acc.pending:
        if t > now:
            continue
        i0 = round((t - start) / 60.0)
        if i0 + lead > n:
            keep.append((t, forecast))
            continue
        actual = peak(values[max(0, i0) : i0 + lead]) if i0 + lead > 0 else math.nan
        if actual == actual:
            acc = _score(acc, now, forecast, actual)
    return replace(acc, pending=tuple(keep))


def _backtest(p: Predictive, values: FloatArray, first: int, lead: int, now: float) -> Accuracy:
    acc = Accuracy()
    n = values.shape[0]
    for j in range(BACKTEST_POINTS):
        at = n - lead - j * BACKTEST_SPACING_MINUTES
        if at - first < DAY_MINUTES + BASE_MINUTES:
            break
        g = growth(
            values,
            lead_minutes=lead,
            lookback_days=p.lookback_days,
            seasonality=p.seasonality,
            quantile=p.quantile,
            at=at,
        )
        base = recent_peak(values[:at])
        actual = peak(values[at : at + lead])
        if g is None or not base > 0 or actual != actual:
            continue
        acc = _score(acc, now, base * g.typical, actual)
    return acc


def predict(
    p: Predictive, *, values: FloatArray, start: float, now: float, nc: Nowcast, accuracy: Accuracy
) -> Prediction:
    """Run the predictive step on per-minute ``values`` whose first bucket starts at epoch ``start``."""
    if not p.enabled:
        return Prediction(None, None, None, False, "predictive scaling disabled", accuracy)
    lead = math.ceil(p.lead_time_seconds / 60)
    if lead <= 0:
        return Prediction(None, None, None, False, "leadTimeSeconds is 0: nothing to pre-scale for", accuracy)
    acc = _mature(accuracy, values, start, now, lead)
    if values.shape[0] and not math.isnan(values[0]):
        first = 0
    else:
        valid = np.flatnonzero(~np.isnan(values))
        first = int(valid[0]) if valid.size else values.shape[0]
    hours = (values.shape[0] - first) / 60.0
    if hours < p.min_history_hours:
        return Prediction(
            None, None, None, False, f"learning: {hours:.1f} h of history, needs {p.min_history_hours} h", acc
        )
    g = growth(
        values,
        lead_minutes=lead,
        lookback_days=p.lookback_days,
        seasonality=p.seasonality,
        quantile=p.quantile,
    )
    if g is None:
        return Prediction(
            None, None, None, False, "no recent load or no comparable past days in the history", acc
        )
    if acc.actual_sum <= 0 and not acc.pending:
        acc = _backtest(p, values, first, lead, now)
    base = current_level(values)
    value = base * g.typical
    if not acc.pending or now - acc.pending[-1][0] >= max(60.0, lead * 60.0 / MAX_PENDING):
        acc = replace(acc, pending=(*acc.pending, (now, value))[-MAX_PENDING:])
    error = acc.error_percent
    if acc.stepped_back and error is not None and error < p.max_error_percent * REENGAGE_FACTOR:
        acc = replace(acc, stepped_back=False)
    elif not acc.stepped_back and error is not None and error > p.max_error_percent:
        acc = replace(acc, stepped_back=True)
    err_text = "error unknown" if error is None else f"error {error:.1f}%"
    shape = (
        f"{g.days} past days: typical x{g.typical:.3f}, assured x{g.assured:.3f} in {lead} min, {err_text}"
    )
    rise = max(0.0, g.assured - 1.0) * g.days / (g.days + SHRINK_DAYS)
    burst = nc.burst_load
    load = min(burst * (1.0 + rise), max(burst, g.level * nc.margin))
    if g.days < MIN_DAYS:
        return Prediction(
            value, load, g, False, f"{shape}; needs {MIN_DAYS} comparable past days to act", acc
        )
    if acc.stepped_back:
        limit = f"{p.max_error_percent:g}%"
        return Prediction(
            value, load, g, False, f"stepped back: {err_text} above maxErrorPercent {limit}", acc
        )
    if p.mode == "ForecastOnly":
        return Prediction(value, load, g, False, f"forecast only: {shape}", acc)
    return Prediction(value, load, g, True, shape, acc)
