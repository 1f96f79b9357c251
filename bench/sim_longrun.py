"""``llmroute simulate`` on a long synthetic trace: time and peak memory against the trace's length (JSON).

The decision state the simulator carries from minute to minute (the scaler's memory, forecast accuracy,
failover health) is bounded, and the history a decision sees is the route's lookback, not the whole trace;
so the peak resident memory of a 30-day run should be close to that of a 3-day run (the trace and the
per-minute timeline, a few bytes a minute, are the only parts that grow with it). Each length runs in its
own process (``llmroute simulate --minutes``) and its peak RSS is read from the kernel (``wait4``).

The trace: 30 days a minute, a diurnal cycle (peak at 20:00, x2.5 over the night), weekends at 70 %, 1 %
growth a day and 4 % noise, seeded.

Usage: ``flock /tmp/llmroute-heavy.lock python -m bench.sim_longrun [--days 3 30] [--peak-replicas 40]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

DAY = 1440
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday


def trace(days: int, seed: int = 7) -> np.ndarray:
    """Requests per minute over ``days`` days (see the module docstring)."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY)
    hour = (t % DAY) / 60.0
    daily = 1.0 + 1.5 * (0.5 + 0.5 * np.cos((hour - 20.0) / 24.0 * 2 * np.pi))
    weekend = np.where((t // DAY) % 7 >= 5, 0.7, 1.0)
    growth = 1.01 ** (t // DAY)
    noise = rng.lognormal(0.0, 0.04, t.shape[0])
    return 600.0 * daily * weekend * growth * noise


def write_trace(path: Path, values: np.ndarray) -> None:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "requests"])
        for i, v in enumerate(values):
            out.writerow([(START + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), f"{v:.1f}"])


def run(trace_path: Path, minutes: int, peak_replicas: int, workdir: Path) -> dict[str, Any]:
    """One ``llmroute simulate`` of the first ``minutes`` of the trace: seconds, peak RSS, summary."""
    cmd = [
        sys.executable, "-m", "llmroute", "simulate", "--trace", str(trace_path), "--policy", "llmroute",
        "--no-frontier", "--quiet", "--json", "--minutes", str(minutes),
        "--peak-replicas", str(peak_replicas), "--out", str(workdir / f"timeline-{minutes}.csv"),
    ]  # fmt: skip
    out_path, err_path = workdir / f"summary-{minutes}.json", workdir / f"stderr-{minutes}.txt"
    started = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own peak RSS (KiB on Linux)
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"simulate failed ({proc.returncode}): {err_path.read_text()[-2000:]}")
    return {
        "minutes": minutes,
        "seconds": round(seconds, 1),
        "max_rss_kb": usage.ru_maxrss,
        "summary": out_path.read_text(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[3, 30])
    parser.add_argument("--peak-replicas", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmroute-longrun-") as tmp:
        workdir = Path(tmp)
        path = workdir / "trace.csv"
        write_trace(path, trace(max(args.days)))
        runs = [run(path, days * DAY, args.peak_replicas, workdir) for days in sorted(args.days)]
    out = {
        "trace_days": max(args.days),
        "runs": [{k: v for k, v in r.items() if k != "summary"} for r in runs],
    }
    first, last = runs[0], runs[-1]
    if first["max_rss_kb"] and last["max_rss_kb"]:
        out["rss_ratio_longest_to_shortest"] = round(last["max_rss_kb"] / first["max_rss_kb"], 3)
    try:
        out["summary_longest"] = json.loads(last["summary"])
    except ValueError:
        out["summary_longest"] = last["summary"][-2000:]
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
