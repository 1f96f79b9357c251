"""A per-minute traffic trace replayed faster than real time, as an offered rate for the load generator.

``speed`` is the compression: at 480x a day of the trace passes in three minutes (one trace minute every
0.125 s). The replay starts at the midnight (of the trace's first day) of its busiest day, so the daily
ramp and its surges happen within the run, and it is scaled so that its peak - smoothed over
``smooth_seconds`` of real time, the span a rate window of the operator sees - is ``peak_rps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from llmroute.core.series import FloatArray
from llmroute.sim.trace import Trace

DAY = 1440


@dataclass(frozen=True)
class Shape:
    name: str
    start: datetime  # trace time replayed at elapsed 0
    speed: float
    step: float  # seconds of real time per entry of ``rates``
    rates: FloatArray  # offered requests/s

    def rate(self, elapsed: float) -> float:
        index = min(max(int(elapsed / self.step), 0), len(self.rates) - 1)
        return float(self.rates[index])

    def trace_time(self, elapsed: float) -> datetime:
        return self.start + timedelta(seconds=elapsed * self.speed)

    def describe(self) -> str:
        span = len(self.rates) * self.step * self.speed / 3600
        return (
            f"{self.name} from {self.start:%Y-%m-%d %H:%M} UTC, {span:.0f} h at {self.speed:g}x: "
            f"{float(np.min(self.rates)):.0f}-{float(np.max(self.rates)):.0f} req/s offered"
        )


def _filled(values: FloatArray) -> FloatArray:
    """Missing minutes interpolated from their neighbours (a gap is not zero traffic)."""
    good = ~np.isnan(values)
    if not good.any():
        return np.zeros_like(values)
    index = np.arange(len(values))
    return np.interp(index, index[good], values[good])


def busiest_day(trace: Trace) -> int:
    """Index of the first minute of the whole day (from the trace start) with the most requests."""
    days = max(1, trace.minutes // DAY)
    totals = [float(np.nansum(trace.requests[d * DAY : (d + 1) * DAY])) for d in range(days)]
    return int(np.argmax(totals)) * DAY


def compress(
    trace: Trace,
    *,
    duration: float,
    speed: float,
    peak_rps: float,
    smooth_seconds: float = 10.0,
    step: float = 0.5,
) -> Shape:
    """The offered rate of ``duration`` real seconds of ``trace`` at ``speed`` (see module doc)."""
    if duration <= 0 or speed <= 0 or peak_rps <= 0:
        raise ValueError("duration, speed and peak_rps must be positive")
    first = busiest_day(trace)
    per_minute = _filled(trace.requests)
    steps = max(1, round(duration / step))
    span = steps * step * speed / 60.0  # trace minutes replayed
    repeats = int(np.ceil((first + span + 1) / len(per_minute)))
    cumulative = np.concatenate([[0.0], np.cumsum(np.tile(per_minute, repeats))])
    edges = first + np.arange(steps + 1) * (step * speed / 60.0)
    minute_index = np.arange(len(cumulative))
    counts = np.diff(np.interp(edges, minute_index, cumulative))  # requests of the trace in each step
    raw = counts / (step * speed)  # the trace's own requests/s
    window = max(1, round(smooth_seconds / step))
    smoothed = np.convolve(raw, np.ones(window) / window, mode="valid") if len(raw) >= window else raw
    peak = float(np.max(smoothed))
    rates = raw * (peak_rps / peak) if peak > 0 else raw
    return Shape(trace.name, trace.time_at(first), speed, step, rates)
