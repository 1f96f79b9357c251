"""Benchmark: llmroute's policy against the hold rule, a constant headroom over the recent peak (JSON).

The hold rule is the policy behind the frontier benchmark's constant-headroom bound
(:func:`bench.sim_bounds.hold_schedule`): at every minute, ``h`` times the busiest of the last ``W`` known
minutes' load, in replicas, rising no faster than the scale-up policies allow, falling at once. Over a grid
of ``W`` (15 / 30 / 60 / 120 minutes) and ``h`` (1.0 to 1.3 in steps of 0.05) it is scored exactly as
llmroute is (:func:`llmroute.sim.frontier.compare`: under-provisioning against HPA's frontier at the same
cost, cost against the oracle's, scale events against HPA's at u=0.8) on every case of
:mod:`bench.sim_frontier`. The set meeting the most cases of the first folder is then scored on the
second (``--heldout-dir``): a fixed headroom chosen on one suite, tried on traffic it was not chosen on.
Per case, some ``(W, h)`` often meets targets llmroute misses (the frontier benchmark's ``witness``); the
question here is whether one setting does so across traces.

Usage: ``python -m bench.sim_hold [--traces-dir DIR] [--heldout-dir DIR] [--jobs N]`` (about two minutes
with ``--jobs 2``; run it under the shared heavy lock).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from typing import Any

from bench.sim_bounds import ReplicaRules, hold_schedule
from bench.sim_frontier import SETTINGS, Case, cases, load
from bench.sim_plain import run_cases, suite_arguments, tally, verdict
from llmroute.sim.capacity import measure
from llmroute.sim.frontier import compare
from llmroute.sim.run import simulate

WINDOWS = (15, 30, 60, 120)  # known minutes whose busiest one the headroom is held over
HEADROOMS = tuple(round(1.0 + 0.05 * k, 2) for k in range(7))  # 1.0 .. 1.3
GRID: tuple[tuple[int, float], ...] = tuple(itertools.product(WINDOWS, HEADROOMS))


def _key(window: int, h: float) -> str:
    return f"w{window}/h{h:g}"


def run_case(case: Case) -> dict[str, Any]:
    """llmroute's verdict and every grid point's verdict on one case."""
    result = simulate(load(case), None, SETTINGS, detail=False)
    comp = result.comparison
    assert comp is not None
    rules = ReplicaRules.from_spec(result.spec)
    hold: dict[str, Any] = {}
    for window, h in GRID:
        schedule = hold_schedule(result.demand, SETTINGS.model, rules, h, window)
        metrics, _ = measure(result.demand, schedule, SETTINGS.model)
        c = compare(comp.points, metrics, comp.oracle, comp.target_utilisation)
        hold[_key(window, h)] = verdict(c)
    return {
        "group": case.group,
        "case": case.name,
        "llmroute": verdict(comp),
        "hold": hold,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_hold", description=__doc__)
    suite_arguments(parser)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    groups = tuple(args.group or ("trace", "day", "synthetic"))
    dev = tally(run_cases(run_case, cases(args.traces_dir, groups), args.jobs), "hold")
    if not dev["cases"]:
        print(json.dumps({"error": f"no cases (no traces in {args.traces_dir}?)"}))
        return 1
    settings = [k for k in dev if k not in ("llmroute", "cases")]
    chosen = max(settings, key=lambda k: (dev[k]["all"], k))
    out: dict[str, Any] = {
        "benchmark": "sim_hold",
        "grid": {"window_minutes": WINDOWS, "headroom": HEADROOMS},
        "chosen_on_first_folder": chosen,
        "first_folder": {
            "dir": str(args.traces_dir),
            "cases": dev["cases"],
            "llmroute": dev["llmroute"],
            "hold_chosen": dev[chosen],
            "hold_by_params": {k: dev[k] for k in settings},
        },
    }
    if args.heldout_dir is not None:
        held_groups = tuple(g for g in groups if g != "synthetic")
        held = tally(run_cases(run_case, cases(args.heldout_dir, held_groups), args.jobs), "hold")
        out["second_folder"] = {
            "dir": str(args.heldout_dir),
            "cases": held["cases"],
            "llmroute": held["llmroute"],
            "hold_chosen": held[chosen],
            "hold_best_any_params": max(held[k]["all"] for k in settings),
            "hold_by_params": {k: held[k] for k in settings},
        }
        both = max(settings, key=lambda k: (dev[k]["all"] + held[k]["all"], k))
        out["best_on_both_folders"] = {
            "params": both,
            "met": dev[both]["all"] + held[both]["all"],
            "llmroute_met": dev["llmroute"]["all"] + held["llmroute"]["all"],
            "cases": dev["cases"]["all"] + held["cases"]["all"],
        }
    out["total_seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
