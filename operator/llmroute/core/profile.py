"""Time-of-day (and day-of-week) load profile: how the load grew over the next minutes on past days.

For every past day within the lookback the profile compares, at the same time of day as "now", the peak
load of the ``lead`` minutes that followed with the peak of the ``base`` minutes before (both the highest
3-minute mean, so minute noise cancels out of the ratio). That ratio is that day's *growth*. A day only
counts when it is comparable:

* its base and lead windows have no missing minute (a collection gap teaches nothing);
* its base is neither near zero nor wildly off today's: within a factor :data:`COMPARABLE` of the base
  now (a ratio from a near-zero base is an artefact, not a pattern).

Days exactly a week back count three times when weekly seasonality is on (and are the only days used when
it is the only seasonality). Three figures come out:

* ``typical`` - the weighted median growth: the point forecast (``base x typical``);
* ``assured`` - the weighted ``(1 - quantile)`` quantile: a rise at least that large happened on about a
  ``quantile`` share of past days, so one odd day (an outlier the others do not share) never raises it;
* ``level`` - the highest absolute peak those days reached in the lead window: what the profile's own
  level supports, a bound on any forecast whatever the ratios say.

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
COMPARABLE = 4.0  # a past day's base within this factor of today's


@dataclass(frozen=True)
class Growth:
    """Growth over the lead time on comparable past days: median, assured (low quantile), peak level."""

    typical: float
    assured: float
    days: int
    level: float


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


def recent_peak(values: FloatArray, base: int = BASE_MINUTES) -> float:
    """Peak of the last ``base`` minutes of ``values`` (what growth ratios are taken against); NaN if any
    of them is missing."""
    tail = values[max(0, values.shape[0] - base) :]
    if tail.shape[0] < base or bool((tail != tail).any()):
        return math.nan
    return peak(tail)


def current_level(values: FloatArray, base: int = BASE_MINUTES) -> float:
    """Peak of the minutes present among the last ``base`` of ``values``: today's level, which a few
    missing minutes (a metrics gap, rates distrusted after it) do not make unknown. NaN with fewer than
    :data:`SMOOTH_MINUTES` minutes present. Past days are held to the stricter :func:`recent_peak`: a
    ratio is never *learned* across a gap."""
    tail = values[max(0, values.shape[0] - base) :]
    if int((tail == tail).sum()) < SMOOTH_MINUTES:
        return math.nan
    return peak(tail)


def day_growth(
    values: FloatArray, at: int, lead: int, base: int = BASE_MINUTES
) -> tuple[float, float, float] | None:
    """(growth, base peak, lead peak) at index ``at``: the peak of ``[at, at+lead)`` over that of
    ``[at-base, at)``.

    ``None`` when a window is out of range or has a missing minute, or the base is not positive.
    """
    if at - base < 0 or at + lead > values.shape[0] or lead <= 0:
        return None
    before = recent_peak(values[:at], base)
    ahead = values[at : at + lead]
    if not before > 0 or bool((ahead != ahead).any()):
        return None
    after = peak(ahead)
    return after / before, before, after


def growth(
    values: FloatArray,
    *,
    lead_minutes: int,
    lookback_days: int,
    seasonality: Sequence[str],
    quantile: float,
    at: int | None = None,
) -> Growth | None:
    """Growth expected from index ``at`` (default: the end of ``values``, now) over ``lead_minutes``.

    ``None`` without a base now or without a comparable past day.
    """
    if lead_minutes <= 0 or not seasonality:
        return None
    now = values.shape[0] if at is None else at
    base_now = current_level(values[:now])
    if not base_now > 0:
        return None
    daily, weekly = "Daily" in seasonality, "Weekly" in seasonality
    ratios: list[float] = []
    weights: list[float] = []
    level = 0.0
    for k in range(1, lookback_days + 1):
        is_week = k % WEEK_DAYS == 0
        if not daily and not is_week:
            continue
        seen = day_growth(values, now - k * DAY_MINUTES, lead_minutes)
        if seen is None:
            continue
        ratio, before, after = seen
        if not 1.0 / COMPARABLE <= before / base_now <= COMPARABLE:
            continue
        ratios.append(ratio)
        weights.append(WEEKLY_WEIGHT if weekly and is_week else 1.0)
        level = max(level, after)
    if not ratios:
        return None
    return Growth(
        typical=weighted_quantile(ratios, weights, 0.5),
        assured=weighted_quantile(ratios, weights, 1.0 - quantile),
        days=len(ratios),
        level=level,
    )
