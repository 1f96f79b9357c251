"""Run every benchmark in turn and print one JSON document with all their results.

    .venv/bin/python -m bench.run_all [--only NAME ...]

Each benchmark also runs on its own (``python -m bench.<name>``; ``sim_frontier_heldout`` is
``python -m bench.sim_frontier --traces-dir bench/traces/heldout --group trace --group day``). They take a
few minutes each and expect an otherwise quiet machine: numbers from a loaded machine are not comparable.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HELDOUT_DIR = Path(__file__).parent / "traces" / "heldout"  # traces the scaling policy was not tuned on
HELDOUT = ["--traces-dir", str(HELDOUT_DIR), "--group", "trace", "--group", "day"]
RUNS: dict[str, tuple[str, list[str]]] = {  # a run's name -> its module under bench/ and its arguments
    "sim_frontier_heldout": ("sim_frontier", HELDOUT),
    "sim_plain": ("sim_plain", ["--jobs", "2", "--heldout-dir", str(HELDOUT_DIR)]),
    "sim_hold": ("sim_hold", ["--jobs", "2", "--heldout-dir", str(HELDOUT_DIR)]),
}
BENCHMARKS = (
    "sim_frontier",
    "sim_frontier_heldout",
    "sim_plain",
    "sim_hold",
    "sim_longrun",
    "operator_latency",
    "operator_scale",
    "proxy_latency",
    "proxy_throughput",
    "proxy_ratelimit",
    "proxy_memory",
    "proxy_balancing",
    "proxy_watch_memory",
    "proxy_sse_line",
    "access_log_cost",
    "report_throughput",
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", action="append", choices=BENCHMARKS)
    args = parser.parse_args()
    results: dict[str, object] = {}
    failed = 0
    for name in args.only or BENCHMARKS:
        started = time.monotonic()
        print(f"running bench.{name} ...", file=sys.stderr, flush=True)
        module, extra = RUNS.get(name, (name, []))
        argv = [sys.executable, "-m", f"bench.{module}", *extra]
        proc = subprocess.run(argv, capture_output=True, text=True)
        seconds = round(time.monotonic() - started, 1)
        try:
            results[name] = {"seconds": seconds, "result": json.loads(proc.stdout)}
        except json.JSONDecodeError:
            failed += 1
            results[name] = {"seconds": seconds, "error": proc.stderr[-2000:], "exit": proc.returncode}
    print(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
