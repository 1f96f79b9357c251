"""Short-term load estimate with a volatility-aware burst margin (the reactive half of llmroute's scaling).

From the last two hours of per-minute load it computes

* the **level**: an exponentially weighted mean of recent minutes (weight :data:`ALPHA` on the newest,
  a half-life of about three minutes) that jumps straight to the new value when the load moves by more
  than x2 (a regime change, not noise);
* the **errors**: how much the load two minutes later differed from the level, ``log(load[t+2] /
  level[t])``. Two minutes is the time a decision needs to take effect (one minute of metric lag plus a
  replica's start-up);
* the **burst margin**: the 95th percentile of those errors, at least 1 and at most ``max_margin``
  (the scaler passes ``1 + 1.5 x tolerance``). Calm traffic gets a margin of a few percent, traffic with
  bursts a larger one. Until :data:`COLD_SAMPLES` errors exist the margin leans towards
  :data:`COLD_MARGIN`: with no history, be generous;
* the **breakout floor**: a last minute above ``level x`` the 95th-percentile band of the errors is not
  noise but the start of a surge or ramp, and is covered in full.

With ``peak=True`` the error of minute ``t`` is taken over the whole horizon instead, ``log(max(load[t+1],
..., load[t+h]) / level[t])``: the load a replica removed now must cover, since it may peak at any minute
before a replica bought back is ready (the scaler sizes its scale-downs this way).

Missing minutes (NaN) keep the level and give no error. This is conformal-style sizing (an empirical
quantile of the recent out-of-sample errors of a simple forecaster): it needs no model of the traffic and
adapts as the volatility changes. HPA uses the same fixed headroom whatever the traffic does; sizing the
margin from observed volatility spends replicas where bursts actually happen.
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
ALPHA = 0.2
SHIFT = 2.0
MAX_MARGIN = 1.15
COLD_MARGIN = 1.25
COLD_SAMPLES = 5
_LOG_CLIP_HI = math.log(2.0)
_LOG_CLIP_LO = math.log(0.05)
_TINY = 1e-9


@dataclass(frozen=True)
class Nowcast:
    """The short-term view of the load: last sample, smoothed level and multiplicative burst margin.

    ``band`` is the 95th-percentile error band (x level) beyond which the last minute is a breakout.
    """

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


def nowcast(
    values: FloatArray, max_margin: float = MAX_MARGIN, horizon: int = HORIZON_MINUTES, peak: bool = False
) -> Nowcast | None:
    """Nowcast from per-minute ``values`` (most recent last, NaN = missing); ``None`` without any data.

    ``max_margin`` (>= 1) caps the burst margin. ``horizon`` (minutes, >= 1) is how far ahead of the level
    the errors are measured; with ``peak`` an error is the busiest minute of the horizon, not its last. The
    first few errors after the first valid sample are skipped: the level has not settled yet.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 minute, got {horizon}")
    n = int(values.shape[0])
    begin = max(0, n - (WINDOW_MINUTES + horizon + WARMUP_MINUTES))
    window = values[begin:]
    lv = levels(window.tolist())
    if not lv or lv[-1] != lv[-1]:
        return None
    ok = ~np.isnan(window)
    last = float(window[np.flatnonzero(ok)[-1]])
    first_valid = int(np.argmax(ok))
    first_ok = max(first_valid + FIRST_ERRORS_SKIPPED + horizon, len(lv) - WINDOW_MINUTES)
    x = window[first_ok:]
    if peak:  # the busiest known minute of load[t+1..t+h] (np.fmax skips a NaN unless both are NaN)
        ahead = [window[first_ok - horizon + j : len(lv) - horizon + j] for j in range(1, horizon)]
        x = np.fmax.reduce(np.vstack([*ahead, x]), axis=0)
    base = np.asarray(lv, dtype=np.float64)[first_ok - horizon : len(lv) - horizon]
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
        band = _quantile(sorted(err.tolist()), QUANTILE)
        lq = min(band, math.log(max(1.0, max_margin)))
    else:
        lq = cold
    weight = min(1.0, k / COLD_SAMPLES)
    log_margin = weight * lq + (1.0 - weight) * max(cold, lq)
    margin = math.exp(max(0.0, log_margin))
    return Nowcast(last=last, level=float(lv[-1]), margin=margin, samples=k, band=max(margin, math.exp(band)))
