"""Time-of-day (and day-of-week) load profile: how the load grew over the next minutes on past days.

For every past day within the lookback the profile compares, at the same time of day as "now", the peak
load of the ``lead`` minutes that followed (highest 3-minute mean) with the mean of the ``base`` minutes
before. That ratio is
that day's *growth*. Days exactly a week back count three times when weekly seasonality is on (and are the
only days used when it is the only seasonality). Two figures come out:

* ``typical`` - the weighted median growth: the point forecast (``level x typical``);
* ``assured`` - the weighted ``(1 - quantile)`` quantile: a rise at least that large happened on about a
  ``quantile`` share of past days. Pre-scaling uses it, so one odd day does not buy replicas.

Ratios rather than absolute values keep the profile valid when the overall volume drifts between days.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from llmroute.core.series import FloatArray

DAY_MINUTES = 1440
WEEK_DAYS = 7
BASE_MINUTES = 10
WEEKLY_WEIGHT = 3.0
SMOOTH_MINUTES = 3


@dataclass(frozen=True)
class Growth:
    typical: float
    assured: float
    days: int


def _mean(values: FloatArray) -> float:
    items = [x for x in values.tolist() if x == x]
    return sum(items) / len(items) if items else math.nan


def weighted_quantile(values: Sequence[float], weights: Sequence[float], q: float) -> float:
    """Lower weighted quantile: the smallest value whose cumulative weight reaches ``q``."""
    pairs = sorted(zip(values, weights, strict=True))
    total = sum(w for _, w in pairs)
    acc = 0.0
    for value, weight in pairs:
        acc += weight
        if acc >= q * total - 1e-12:
            return value
    return pairs[-1][0]


def peak(values: FloatArray) -> float:
    """The highest mean of :data:`SMOOTH_MINUTES` consecutive minutes (NaN minutes are skipped)."""
    items: list[float] = [float(x) for x in values.tolist() if x == x]
    if len(items) <= SMOOTH_MINUTES:
        return sum(items) / len(items) if items else math.nan
    run = sum(items[:SMOOTH_MINUTES])
    best = run
    for i in range(SMOOTH_MINUTES, len(items)):
        run += items[i] - items[i - SMOOTH_MINUTES]
        best = max(best, run)
    return best / SMOOTH_MINUTES


def recent_mean(values: FloatArray, base: int = BASE_MINUTES) -> float:
    """Mean of the last ``base`` minutes of ``values`` (the base growth ratios are taken against)."""
    return _mean(values[max(0, values.shape[0] - base) :])


def day_growth(values: FloatArray, at: int, lead: int, base: int = BASE_MINUTES) -> float | None:
    """Growth at index ``at``: peak 3-minute mean in ``[at, at+lead)`` over the mean of ``[at-base, at)``."""
    if at - base < 0 or at + lead > values.shape[0] or lead <= 0:
        return None
    before = _mean(values[at - base : at])
    after = peak(values[at : at + lead])
    if not (before > 0 and after == after):
        return None
    return after / before


def growth(
    values: FloatArray,
    *,
    lead_minutes: int,
    lookback_days: int,
    seasonality: Sequence[str],
    quantile: float,
    at: int | None = None,
) -> Growth | None:
    """Growth expected from index ``at`` (default: the end of ``values``, now) over ``lead_minutes``."""
    if lead_minutes <= 0 or not seasonality:
        return None
    now = values.shape[0] if at is None else at
    daily, weekly = "Daily" in seasonality, "Weekly" in seasonality
    ratios: list[float] = []
    weights: list[float] = []
    for k in range(1, lookback_days + 1):
        is_week = k % WEEK_DAYS == 0
        if not daily and not is_week:
            continue
        ratio = day_growth(values, now - k * DAY_MINUTES, lead_minutes)
        if ratio is None:
            continue
        ratios.append(ratio)
        weights.append(WEEKLY_WEIGHT if weekly and is_week else 1.0)
    if not ratios:
        return None
    return Growth(
        typical=weighted_quantile(ratios, weights, 0.5),
        assured=weighted_quantile(ratios, weights, 1.0 - quantile),
        days=len(ratios),
    )
