"""Synthetic stress traces with fixed seeds: the shapes a scaling policy must survive on traffic it never saw.

Each generator returns a per-minute :class:`~llmroute.sim.trace.Trace` of request counts (requests/min),
built from a smooth *rate* shape times multiplicative noise, then Poisson-sampled, so low volumes are
as noisy as real low volumes are. Blank (missing) minutes are NaN, exactly as the trace reader reads an
empty cell. The same ``seed`` always gives the same trace; :data:`SUITE` names the cases and their
default seeds. Volumes are arbitrary: the simulator scales a trace to its busiest minute anyway.

The shapes (one day unless said otherwise):

* ``surge_x3`` (2 days) - a daily cycle with sudden x3 surges reached within a minute, 20-60 min long;
* ``slow_ramp`` - flat, then x5 over eight hours, a plateau, and down again;
* ``flash_crowd`` - x4 within two minutes, 5-15 min long, gone as fast;
* ``heavy_tail_noise`` - a daily cycle with lognormal and Pareto-tailed minute noise;
* ``diurnal_weekly`` (7 days) - daily cycle, quieter weekend, +3 % a day trend;
* ``dead_then_load`` - eight hours at zero, then the usual load at once;
* ``blank_cells`` (3 days) - a daily cycle with collection gaps of 10-200 min as blank cells;
* ``low_volume`` - tens of requests a minute: Poisson noise of 15-20 % every minute;
* ``on_off_batch`` - hourly batch jobs: 25 min at x2.5, then back to the base;
* ``outage_retry`` (2 days) - real zero traffic for 15 min (an outage), then a x1.6 retry storm;
* ``bad_day`` (4 days) - a daily cycle where one morning's 45 minutes are zero and come back at once:
  one day's wild jump a predictor must not learn.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from llmroute.core.series import FloatArray
from llmroute.sim.trace import Trace

DAY = 1440
START = datetime(2025, 3, 3, 16, 0, tzinfo=UTC)  # 00:00 at UTC+8, like the ServeGen traces
BASE_RATE = 20000.0  # requests/min at the daily mean


def _daily(minutes: int, ratio: float, peak_hour: float = 20.0) -> FloatArray:
    """A smooth daily cycle with mean 1 and peak/trough ``ratio``, peaking at ``peak_hour`` local."""
    t = np.arange(minutes) / 60.0
    amp = (ratio - 1.0) / (ratio + 1.0)
    return 1.0 + amp * np.cos(2 * np.pi * (t - peak_hour) / 24.0)


def _noisy(rng: np.random.Generator, rate: FloatArray, sigma: float = 0.03) -> FloatArray:
    """Counts: ``rate`` times lognormal noise of log-sd ``sigma``, Poisson-sampled."""
    mean = np.maximum(rate, 0.0) * rng.lognormal(-0.5 * sigma**2, sigma, rate.shape[0])
    return rng.poisson(mean).astype(np.float64)


def _bursts(
    rng: np.random.Generator, minutes: int, per_day: int, lengths: tuple[int, int]
) -> list[tuple[int, int]]:
    count = max(1, round(per_day * minutes / DAY))
    starts = np.sort(rng.choice(np.arange(60, minutes - lengths[1] - 5), size=count, replace=False))
    return [(int(s), int(rng.integers(lengths[0], lengths[1] + 1))) for s in starts]


def surge_x3(seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    n = 2 * DAY
    rate = BASE_RATE * _daily(n, 2.0)
    for s, length in _bursts(rng, n, 4, (20, 60)):
        rate[s : s + length] *= 3.0
    return _noisy(rng, rate)


def slow_ramp(seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    shape = np.concatenate(
        [np.ones(180), np.linspace(1, 5, 480), np.full(180, 5.0), np.linspace(5, 1, 360), np.ones(240)]
    )
    return _noisy(rng, BASE_RATE / 3 * shape)


def flash_crowd(seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    rate = BASE_RATE * _daily(DAY, 1.5)
    for s, length in _bursts(rng, DAY, 6, (5, 15)):
        rate[s : s + 2] *= (2.5, 4.0)
        rate[s + 2 : s + length] *= 4.0
        rate[s + length : s + length + 1] *= 2.0
    return _noisy(rng, rate)


def heavy_tail_noise(seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    rate = BASE_RATE * _daily(DAY, 2.0) * rng.lognormal(0.0, 0.12, DAY)
    spikes = rng.random(DAY) < 0.03
    rate[spikes] *= 1.0 + rng.pareto(1.5, int(spikes.sum()))
    return _noisy(rng, rate, 0.0)


def diurnal_weekly(seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    n = 7 * DAY
    day = np.arange(n) // DAY
    weekend = np.where(day % 7 >= 5, 0.7, 1.0)
    return _noisy(rng, BASE_RATE * _daily(n, 2.5) * weekend * 1.03**day, 0.04)


def dead_then_load(seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    rate = BASE_RATE * _daily(DAY, 2.0)
    rate[: 8 * 60] = 0.0
    return _noisy(rng, rate)


def blank_cells(seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    n = 3 * DAY
    counts = _noisy(rng, BASE_RATE * _daily(n, 2.0))
    for s in np.sort(rng.choice(np.arange(120, n - 240), size=6, replace=False)):
        counts[int(s) : int(s) + int(rng.integers(10, 201))] = np.nan
    return counts


def low_volume(seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    return _noisy(rng, 40.0 * _daily(DAY, 2.0), 0.05)


def on_off_batch(seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    rate = BASE_RATE * _daily(DAY, 1.3)
    for hour in range(DAY // 60):
        start = hour * 60 + int(rng.integers(0, 10))
        rate[start : start + 25] *= 2.5
    return _noisy(rng, rate)


def outage_retry(seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    n = 2 * DAY
    rate = BASE_RATE * _daily(n, 2.0)
    for s, _ in _bursts(rng, n, 2, (15, 15)):
        rate[s : s + 15] = 0.0
        rate[s + 15 : s + 25] *= 1.6
    return _noisy(rng, rate)


def bad_day(seed: int) -> FloatArray:
    rng = np.random.default_rng(seed)
    n = 4 * DAY
    rate = BASE_RATE * _daily(n, 2.0)
    at = 2 * DAY + int(rng.integers(7 * 60, 10 * 60))
    rate[at : at + 45] = 0.0
    return _noisy(rng, rate)


SUITE: dict[str, tuple[Callable[[int], FloatArray], int]] = {
    "surge_x3": (surge_x3, 101),
    "slow_ramp": (slow_ramp, 102),
    "flash_crowd": (flash_crowd, 103),
    "heavy_tail_noise": (heavy_tail_noise, 104),
    "diurnal_weekly": (diurnal_weekly, 105),
    "dead_then_load": (dead_then_load, 106),
    "blank_cells": (blank_cells, 107),
    "low_volume": (low_volume, 108),
    "on_off_batch": (on_off_batch, 109),
    "outage_retry": (outage_retry, 110),
    "bad_day": (bad_day, 111),
}


def synthetic(name: str, seed: int | None = None) -> Trace:
    """The synthetic trace ``name`` (see :data:`SUITE`) with its default or the given ``seed``.

    Raises ``KeyError`` for an unknown name.
    """
    make, default_seed = SUITE[name]
    requests = make(default_seed if seed is None else seed)
    return Trace(f"synthetic:{name}", START, requests)
