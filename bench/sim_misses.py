"""Where llmroute's under-provisioned minutes fall, case by case (prints JSON): the benchmark's companion
for reading a miss rather than counting it.

For each case of :mod:`bench.sim_frontier` (same groups, same settings) and each minute in which llmroute's
ready replicas serve less than the demand, it gives the minute (from the case's start), the demand and
the ready capacity (req/s), the step into that minute (demand / the previous minute's), and whether llmroute
scaled down in the ``--after-down`` minutes before it. The summary counts those minutes by their offset in
a ``--period``-minute cycle (10 by default: ServeGen publishes one count per 10-minute window and models
the minutes inside it, so its load moves in steps at window boundaries) and by whether a scale-down came
shortly before.

Usage: ``python -m bench.sim_misses [--traces-dir DIR] [--group G ...] [--period N] [--after-down N]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from typing import Any

import numpy as np

from bench.sim_frontier import GROUPS, SETTINGS, Case, add_case_arguments, cases, load
from llmroute.sim.run import simulate


def misses(case: Case, period: int, after_down: int) -> dict[str, Any]:
    """The under-provisioned minutes of ``case`` with what led to each (see the module docstring)."""
    result = simulate(load(case), None, SETTINGS, detail=False)
    demand = result.demand
    capacity = result.ready["llmroute"] * SETTINGS.capacity_rps
    desired = result.runs["llmroute"].desired
    rows = []
    for m in np.flatnonzero(demand > capacity + 1e-9).tolist():
        before = float(demand[m - 1]) if m else math.nan
        down = any(desired[k] < desired[k - 1] for k in range(max(1, m - after_down), m + 1))
        rows.append(
            {
                "minute": m,
                "demand_rps": round(float(demand[m]), 2),
                "ready_capacity_rps": round(float(capacity[m]), 2),
                "step": round(float(demand[m]) / before, 3) if before > 0 else None,
                "scaled_down_shortly_before": down,
                "offset_in_period": m % period,
            }
        )
    return {"group": case.group, "case": case.name, "under_provisioned": rows}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_misses", description=__doc__)
    add_case_arguments(parser)
    parser.add_argument("--period", type=int, default=10, help="cycle length in minutes (default 10)")
    parser.add_argument(
        "--after-down",
        type=int,
        default=10,
        help="minutes a scale-down counts as shortly before (default 10)",
    )
    args = parser.parse_args(argv)
    if args.period < 1 or args.after_down < 0:
        parser.error("--period must be at least 1 and --after-down at least 0")
    found = [
        misses(c, args.period, args.after_down) for c in cases(args.traces_dir, tuple(args.group or GROUPS))
    ]
    every = [r for f in found for r in f["under_provisioned"]]
    summary = {
        "under_provisioned_minutes": len(every),
        "by_offset_in_period": dict(sorted(Counter(r["offset_in_period"] for r in every).items())),
        "scaled_down_shortly_before": sum(1 for r in every if r["scaled_down_shortly_before"]),
    }
    print(json.dumps({"benchmark": "sim_misses", "period": args.period, "summary": summary, "cases": found}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
