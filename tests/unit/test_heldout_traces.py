"""The held-out traces under ``bench/traces/heldout`` read as the frontier benchmark expects.

They are the cases the scaling policy was not tuned on (``python -m bench.sim_frontier --traces-dir
bench/traces/heldout``): every file must be found (gzip included), cut into its whole days, and its
collection gaps must read as missing minutes, never as zero traffic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bench.sim_frontier import cases

from llmroute.sim.trace import read_trace

HELDOUT = Path(__file__).resolve().parents[2] / "bench" / "traces" / "heldout"


def test_every_heldout_trace_and_day_cut_is_a_case() -> None:
    files = sorted(p.name for p in HELDOUT.glob("*.csv.gz"))
    assert len(files) == 6
    found = cases(HELDOUT, ("trace", "day"))
    assert sorted(c.name for c in found if c.group == "trace") == files
    days = [c for c in found if c.group == "day"]
    # 7 + 7 + 4 + 3 days; the two one-day traces are cases only as whole traces
    assert len(days) == 21
    assert all(".csv" not in c.name and c.minutes == 1440 for c in days)
    assert {c.first for c in days if c.name.startswith("servegen_mmid_days10-13")} == {0, 1440, 2880, 4320}


def test_collection_gaps_read_as_missing_not_zero() -> None:
    trace = read_trace(HELDOUT / "servegen_msmall_days07-13.csv.gz")
    assert trace.minutes == 7 * 1440
    missing = np.isnan(trace.requests)
    assert int(missing.sum()) == 370
    # a gap is whole 10-minute windows of the source
    starts = np.flatnonzero(missing & ~np.concatenate(([False], missing[:-1])))
    assert all(int(s) % 10 == 0 for s in starts)
    assert float(np.nanmin(trace.requests)) > 0.0
