"""Whether a trace's bursts cluster in time: what a volatility-sized margin can gain over fixed headroom.

For every trace in the folders given (default: the development traces and ``bench/traces/heldout``) it
takes the scaler's own two-minute errors, ``log(load[t+2] / level[t])`` with the level of
:func:`llmroute.core.nowcast.levels` (missing minutes skipped), marks the top decile as *jumps*, and
compares the jump rate after a busy past with the rate after a calm one: a minute's past is the number of
jumps among the 120 errors before it (the nowcast's window), *busy* its top quartile over the trace and
*calm* its bottom quartile. ``ratio = P(jump | busy) / P(jump | calm)``: near 1, bursts come at random
and no margin sized from recent volatility can beat a constant headroom at the same cost; well above 1,
recent volatility predicts the next burst and an adaptive margin spends replicas where they are needed.
Prints JSON. Usage: ``python -m bench.burst_clustering [DIR ...]``
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from llmroute.core.nowcast import HORIZON_MINUTES, WINDOW_MINUTES, levels
from llmroute.sim.trace import read_trace

HELDOUT = Path(__file__).parent / "traces" / "heldout"
DEV = Path(os.environ.get("LLMROUTE_TRACES", "/work/shared/traces"))


def clustering(values: np.ndarray) -> dict[str, Any]:
    """``P(jump | busy past)``, ``P(jump | calm past)`` and their ratio for per-minute ``values``."""
    level = np.asarray(levels(values.tolist()))
    h = HORIZON_MINUTES
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.log(np.maximum(values[h:], 1e-9) / np.maximum(level[:-h], 1e-9))
    err = err[np.isfinite(err)]
    jump = (err > np.quantile(err, 0.9)).astype(np.float64)
    before = np.concatenate(([0.0], np.cumsum(jump)))
    idx = np.arange(jump.shape[0])
    past = before[idx] - before[np.maximum(0, idx - WINDOW_MINUTES)]
    busy, calm = past > np.quantile(past, 0.75), past <= np.quantile(past, 0.25)
    p_busy = float(jump[busy].mean()) if busy.any() else float("nan")
    p_calm = float(jump[calm].mean()) if calm.any() else float("nan")
    ratio = p_busy / p_calm if p_calm > 0 else float("nan")
    return {
        "errors": int(err.shape[0]),
        "p_jump_busy": round(p_busy, 4),
        "p_jump_calm": round(p_calm, 4),
        "ratio": None if ratio != ratio else round(ratio, 2),
    }


def main(argv: list[str]) -> int:
    folders = [Path(a) for a in argv] or [DEV, HELDOUT]
    rows = []
    for folder in folders:
        for path in sorted([*folder.glob("*.csv"), *folder.glob("*.csv.gz")]):
            trace = read_trace(path)
            if trace.minutes < 4 * WINDOW_MINUTES:
                continue  # too short for a two-hour past to mean anything
            rows.append({"trace": path.name, "folder": str(folder), **clustering(trace.requests)})
    print(json.dumps({"benchmark": "burst_clustering", "traces": rows}, indent=1))
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
