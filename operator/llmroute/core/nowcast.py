"""Short-term load estimate with a volatility-aware burst margin (the reactive half of llmroute's scaling).

From the last two hours of per-minute load it computes

* the **level**: an exponentially weighted mean of recent minutes that jumps straight to the new value
  when the load moves by more than x2 (a regime change, not noise);
* the **errors**: how much the load two minutes later differed from the level, ``log(load[t+2] /
  level[t])``. Two minutes is the time a decision needs to take effect (one minute of metric lag plus a
  replica's start-up);
* the **burst margin**: the 95th percentile of those errors. Calm traffic gets a margin of a few percent,
  traffic with bursts a larger one, capped at :data:`MAX_MARGIN`. Until :data:`COLD_SAMPLES` errors exist
  the margin leans towards :data:`COLD_MARGIN`: with no history, be generous;
* **persistent noise** is only partly covered: when the interquartile range of the errors is above
  :data:`PERSISTENT`, the margin shrinks by :data:`PENALTY` times the excess. Covering noise that is there
  every minute costs replicas every minute, whereas a margin pays off for bursts that come and go;
* the **breakout floor**: a last minute above ``level x`` the (unshrunk) 95th-percentile band is not noise
  but the start of a surge or ramp, and is covered in full.

HPA uses the same fixed headroom whatever the traffic does; sizing the margin from observed volatility
spends replicas where bursts actually happen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from llmroute.core.series import FloatArray

QUANTILE = 0.95
WINDOW_MINUTES = 120
HORIZON_MINUTES = 2
WARMUP_MINUTES = 30  # samples before the error window used only to settle the level
FIRST_ERRORS_SKIPPED = 3  # the level is meaningless for the first samples of a history
ALPHA = 0.3
SHIFT = 2.0
MAX_MARGIN = 1.2
COLD_MARGIN = 1.25
COLD_SAMPLES = 5
PERSISTENT = 0.08  # interquartile range of the log errors above which noise counts as persistent
PENALTY = 1.35
_LOG_CLIP_HI = math.log(2.0)
_LOG_CLIP_LO = math.log(0.05)
_TINY = 1e-9


@dataclass(frozen=True)
class Nowcast:
    """The short-term view of the load: last sample, smoothed level and multiplicative burst margin."""

    last: float
    level: float
    margin: float
    samples: int
    band: float = 1.0

    @property
    def burst_load(self) -> float:
        """The load to be ready for: ``level x margin``, or the last minute if it broke out of the band."""
        covered = self.level * self.margin
        return self.last if self.last > covered and self.last > self.level * self.band else covered


def _quantile(sorted_values: list[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def levels(values: list[float]) -> list[float]:
    """Level after each sample (NaN before the first valid one); NaN samples keep the level."""
    out: list[float] = []
    level = math.nan
    alpha, keep, shift = ALPHA, 1.0 - ALPHA, SHIFT
    for x in values:
        if x == x:  # not NaN
            if level != level or x > level * shift or x * shift < level:
                level = x
            else:
                level = alpha * x + keep * level
        out.append(level)
    return out


def nowcast(values: FloatArray) -> Nowcast | None:
    """Nowcast from per-minute ``values`` (most recent last, NaN = missing); ``None`` without any data.

    The first few errors after the first valid sample are skipped: the level has not settled yet.
    """
    n = int(values.shape[0])
    begin = max(0, n - (WINDOW_MINUTES + HORIZON_MINUTES + WARMUP_MINUTES))
    window = values[begin:]
    lv = levels(window.tolist())
    if not lv or lv[-1] != lv[-1]:
        return None
    ok = ~np.isnan(window)
    last = float(window[np.flatnonzero(ok)[-1]])
    first_valid = int(np.argmax(ok))
    first_ok = max(first_valid + FIRST_ERRORS_SKIPPED + HORIZON_MINUTES, len(lv) - WINDOW_MINUTES)
    x = window[first_ok:]
    base = np.asarray(lv, dtype=np.float64)[first_ok - HORIZON_MINUTES : len(lv) - HORIZON_MINUTES]
    good = ~(np.isnan(x) | np.isnan(base))
    x, base = x[good], base[good]
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.log(np.maximum(x, _TINY) / np.maximum(base, _TINY))
    err = np.where((x <= _TINY) & (base <= _TINY), 0.0, err)
    err = np.clip(err, _LOG_CLIP_LO, _LOG_CLIP_HI)
    k = int(err.shape[0])
    cold = math.log(COLD_MARGIN)
    band = cold
    if k:
        ordered = sorted(err.tolist())
        spread = _quantile(ordered, 0.75) - _quantile(ordered, 0.25)
        band = _quantile(ordered, QUANTILE)
        lq = min(band - PENALTY * max(0.0, spread - PERSISTENT), math.log(MAX_MARGIN))
    else:
        lq = cold
    weight = min(1.0, k / COLD_SAMPLES)
    log_margin = weight * lq + (1.0 - weight) * max(cold, lq)
    margin = math.exp(max(0.0, log_margin))
    return Nowcast(last=last, level=float(lv[-1]), margin=margin, samples=k, band=max(margin, math.exp(band)))
