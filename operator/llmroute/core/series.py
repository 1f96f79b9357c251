"""Load history as a regular time series: the one input every scaling decision reads.

A :class:`LoadSeries` is a run of equal-width buckets. Bucket ``i`` covers
``[start + i*step, start + (i+1)*step)`` and its value is the mean load over that bucket in the scaling
metric's unit (for example total requests/s across all replicas). ``NaN`` marks a bucket with no data.
The simulator builds one per minute from a trace; the operator builds one from a Prometheus range query at
whatever step it used. The decision code works on whole minutes (:meth:`LoadSeries.to_minutes`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
MINUTE = 60
MAX_LOAD = 1e15  # per second: no real service; above it a figure is a broken query, not a measurement


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return value.astimezone(UTC)


@dataclass(frozen=True, eq=False)
class LoadSeries:
    """Per-step load samples: ``start`` (UTC), ``step_seconds`` and one float per step (``NaN`` = missing;
    an infinite or negative value, or one above :data:`MAX_LOAD`, is read as missing too: such a figure
    comes from a broken query, and sizing replicas on it would overflow)."""

    start: datetime
    step_seconds: int
    values: FloatArray

    def __post_init__(self) -> None:
        if self.step_seconds <= 0:
            raise ValueError("step_seconds must be positive")
        object.__setattr__(self, "start", _utc(self.start))
        if (
            not isinstance(self.values, np.ndarray)
            or self.values.dtype != np.float64
            or self.values.ndim != 1
        ):
            object.__setattr__(self, "values", np.asarray(self.values, dtype=np.float64).reshape(-1))
        with np.errstate(invalid="ignore"):
            bad = (self.values > MAX_LOAD) | (self.values < 0)
        if bad.any():  # an infinite, absurdly large or negative load is not a measurement: missing, like NaN
            object.__setattr__(self, "values", np.where(bad, np.nan, self.values))

    # construction -------------------------------------------------------------------------------------
    @classmethod
    def empty(cls, start: datetime, step_seconds: int = MINUTE) -> LoadSeries:
        return cls(start, step_seconds, np.zeros(0, dtype=np.float64))

    @classmethod
    def from_samples(
        cls, samples: Iterable[tuple[datetime, float]], *, step_seconds: int = MINUTE
    ) -> LoadSeries:
        """Bucket irregular ``(time, value)`` samples (a sample at ``t`` describes the bucket holding ``t``).

        Buckets are aligned to the epoch; several samples in one bucket are averaged; gaps become NaN.
        """
        pairs = sorted((_utc(t), float(v)) for t, v in samples)
        if not pairs:
            raise ValueError("from_samples needs at least one sample (use LoadSeries.empty)")
        first = math.floor(pairs[0][0].timestamp() / step_seconds)
        last = math.floor(pairs[-1][0].timestamp() / step_seconds)
        sums = np.zeros(last - first + 1)
        counts = np.zeros(last - first + 1)
        for t, v in pairs:
            if math.isfinite(v):
                i = math.floor(t.timestamp() / step_seconds) - first
                sums[i] += v
                counts[i] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        start = datetime.fromtimestamp(first * step_seconds, UTC)
        return cls(start, step_seconds, values)

    # geometry -----------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def end(self) -> datetime:
        """End of the last bucket (exclusive)."""
        return self.start + timedelta(seconds=self.step_seconds * len(self))

    def time_at(self, index: int) -> datetime:
        """Start of bucket ``index``."""
        return self.start + timedelta(seconds=self.step_seconds * index)

    def index_at(self, when: datetime) -> int:
        """Index of the bucket holding ``when`` (may be out of range)."""
        return math.floor((_utc(when) - self.start).total_seconds() / self.step_seconds)

    # reading ------------------------------------------------------------------------------------------
    def last_valid_index(self) -> int | None:
        n = len(self)
        if n and not math.isnan(self.values[n - 1]):
            return n - 1
        valid = np.flatnonzero(~np.isnan(self.values))
        return int(valid[-1]) if valid.size else None

    def first_valid_index(self) -> int | None:
        if len(self) and not math.isnan(self.values[0]):
            return 0
        valid = np.flatnonzero(~np.isnan(self.values))
        return int(valid[0]) if valid.size else None

    def last_value(self) -> float | None:
        """The most recent non-missing value, or ``None``."""
        i = self.last_valid_index()
        return None if i is None else float(self.values[i])

    def last_time(self) -> datetime | None:
        """End of the most recent bucket with data (the moment that sample was complete)."""
        i = self.last_valid_index()
        return None if i is None else self.time_at(i + 1)

    def staleness(self, now: datetime) -> float | None:
        """Seconds from the end of the last bucket with data to ``now`` (``None`` when there is no data)."""
        last = self.last_time()
        return None if last is None else max(0.0, (_utc(now) - last).total_seconds())

    def slice(self, start: datetime | None = None, end: datetime | None = None) -> LoadSeries:
        """Buckets that start at or after ``start`` and end at or before ``end`` (a view, no copy)."""
        lo = (
            0
            if start is None
            else max(0, math.ceil((_utc(start) - self.start).total_seconds() / self.step_seconds))
        )
        hi = len(self)
        if end is not None:
            hi = min(hi, math.floor((_utc(end) - self.start).total_seconds() / self.step_seconds))
        hi = max(lo, hi)
        return LoadSeries(self.time_at(lo), self.step_seconds, self.values[lo:hi])

    def until(self, now: datetime) -> LoadSeries:
        """Only the buckets complete by ``now``: what a decision at ``now`` may see."""
        return self.slice(None, now)

    def tail(self, count: int) -> LoadSeries:
        count = max(0, min(count, len(self)))
        return LoadSeries(
            self.time_at(len(self) - count), self.step_seconds, self.values[len(self) - count :]
        )

    def to_minutes(self) -> LoadSeries:
        """The same load in 60-second buckets aligned to the minute (mean of the non-missing parts)."""
        if self.step_seconds == MINUTE and self.start.timestamp() % MINUTE == 0:
            return self
        if len(self) == 0:
            start = datetime.fromtimestamp(math.floor(self.start.timestamp() / MINUTE) * MINUTE, UTC)
            return LoadSeries.empty(start)
        t0 = self.start.timestamp()
        times = t0 + self.step_seconds * np.arange(len(self))
        first = math.floor(t0 / MINUTE)
        idx = np.floor(times / MINUTE).astype(np.int64) - first
        if self.step_seconds > MINUTE:  # coarser history: repeat each bucket over the minutes it spans
            per = math.ceil(self.step_seconds / MINUTE)
            idx = (idx[:, None] + np.arange(per)[None, :]).reshape(-1)
            vals = np.repeat(self.values, per)
        else:
            vals = self.values
        size = int(idx.max()) + 1
        ok = ~np.isnan(vals)
        sums = np.bincount(idx[ok], weights=vals[ok], minlength=size)
        counts = np.bincount(idx[ok], minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        return LoadSeries(datetime.fromtimestamp(first * MINUTE, UTC), MINUTE, out.astype(np.float64))


def series_from_values(start: datetime, values: Sequence[float], step_seconds: int = MINUTE) -> LoadSeries:
    """Convenience constructor for tests and small callers."""
    return LoadSeries(start, step_seconds, np.asarray(values, dtype=np.float64))
