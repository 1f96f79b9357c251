"""Benchmark: llmroute's policy against a plain growth-quantile rule on the frontier benchmark's cases (JSON).

The plain rule is the simplest policy that sizes headroom from traffic rather than from a constant: at
decision minute ``t`` (seeing the known minutes before ``t``, as every simulated policy does) let ``x`` be
the last known minute's load and ``G`` the ``q``-quantile of the two-minute growth ratios
``load[k + 2] / load[k]`` over the last ``window`` known minutes (the load ``lag + start-up`` later than
the moment a decision is made, relative to it; minutes with no load are skipped). Its count is
``ceil(x x max(1, G) / capacity)``, raised no faster than the route's scale-up policies allow and lowered
only to the largest count it asked for over the last ``hold`` minutes (scale-down hysteresis, as HPA's
stabilisation window); with no known minute it holds. It has no level smoothing, no breakout, no
removal horizon, no recovery floor and no prediction.

Each case is scored exactly as :mod:`bench.sim_frontier` scores llmroute (the same HPA frontier, oracle and
three targets), so the two policies' "within every target" counts compare directly. A grid of the rule's
three parameters is run on every case; the JSON gives, per parameter set, the cases it meets per group,
and the set that meets the most on the first folder, scored on every folder given. Choosing on one
folder and scoring on another (``--traces-dir`` the development traces, ``--heldout-dir`` the held-out
ones) is the fair comparison: a set chosen on the cases it is scored on is tuned to them.

Usage: ``python -m bench.sim_plain [--traces-dir DIR] [--heldout-dir DIR] [--jobs N]`` (about a minute
with ``--jobs 2``; run it under the shared heavy lock).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.sim_bounds import ReplicaRules
from bench.sim_frontier import SETTINGS, Case, add_case_arguments, cases, load
from llmroute.core.series import FloatArray
from llmroute.sim.capacity import CapacityModel, IntArray, measure
from llmroute.sim.frontier import Comparison, compare
from llmroute.sim.run import simulate

QUANTILES = (0.9, 0.95, 0.99)
WINDOWS = (120, 240)  # known minutes of growth ratios
HOLDS = (5, 10, 20)  # minutes of scale-down hysteresis
BANDS = (0.0, 0.1, 0.2)  # a scale-down must drop the count by more than this share
GROWTH_MINUTES = 2  # metrics lag + start-up, in minutes
Params = tuple[float, int, int, float]
GRID: tuple[Params, ...] = tuple(itertools.product(QUANTILES, WINDOWS, HOLDS, BANDS))


def asked_counts(
    demand: FloatArray, model: CapacityModel, rules: ReplicaRules, q: float, window: int
) -> IntArray:
    """The count the rule asks for at every minute before hysteresis and step limits (0: no known minute).

    ``demand`` in req/s per minute, NaN missing; the decision at minute ``t`` sees the minutes before it
    (minute 0: the count the first minute needs, the simulator's start for every policy).
    """
    counts: IntArray = asked_by_quantile(demand, model, rules, (q,), window)[0]
    return counts


def asked_by_quantile(
    demand: FloatArray, model: CapacityModel, rules: ReplicaRules, quantiles: tuple[float, ...], window: int
) -> IntArray:
    """:func:`asked_counts` for each of ``quantiles`` (one row each): the growth ratios of a window are
    the same for every quantile, so they are gathered once per minute, not once per quantile."""
    n = int(demand.shape[0])
    out = np.zeros((len(quantiles), n), dtype=np.int64)
    if n and not np.isnan(demand[0]):  # the start, as every simulated policy: its count for the first minute
        out[:, 0] = int(np.clip(np.ceil(demand[0] / model.capacity_rps - 1e-9), rules.lo, rules.hi))
    known: list[float] = []  # known minutes' load, oldest first
    for t in range(1, n):
        if not np.isnan(demand[t - 1]):
            known.append(float(demand[t - 1]))
        if not known:
            continue
        recent = np.asarray(known[-(window + GROWTH_MINUTES) :])
        base, ahead = recent[:-GROWTH_MINUTES], recent[GROWTH_MINUTES:]
        ok = base > 0
        growth = np.quantile(ahead[ok] / base[ok], quantiles) if np.any(ok) else np.ones(len(quantiles))
        size = np.ceil(known[-1] * np.maximum(1.0, growth) / model.capacity_rps - 1e-9)
        out[:, t] = np.clip(size, rules.lo, rules.hi)
    return out


def plain_schedule(asked: IntArray, rules: ReplicaRules, hold: int, band: float) -> IntArray:
    """The rule's count at every minute from :func:`asked_counts`: up within the scale-up policies, down
    only to the largest count asked for over the last ``hold`` minutes and only by more than ``band``."""
    n = int(asked.shape[0])
    out = np.zeros(n, dtype=np.int64)
    count = rules.lo
    for t in range(n):
        if asked[t] == 0:  # no known minute yet: hold
            out[t] = count
            continue
        target = int(asked[max(0, t - hold + 1) : t + 1].max())
        if target > count:
            count = min(target, rules.step_up(count)) if t > 0 else target
        elif target < count * (1.0 - band):
            count = target
        out[t] = count
    return out


def _key(p: Params) -> str:
    q, window, hold, band = p
    return f"q{q:g}/w{window}/h{hold}/b{band:g}"


def run_case(case: Case) -> dict[str, Any]:
    """llmroute's verdict and every grid point's verdict on one case."""
    trace = load(case)
    result = simulate(trace, None, SETTINGS, detail=False)
    comp = result.comparison
    assert comp is not None
    rules = ReplicaRules.from_spec(result.spec)
    model = SETTINGS.model
    plain: dict[str, Any] = {}
    asked = {w: asked_by_quantile(result.demand, model, rules, QUANTILES, w) for w in WINDOWS}
    for p in GRID:
        q, window, hold, band = p
        counts = asked[window][QUANTILES.index(q)]
        metrics, _ = measure(result.demand, plain_schedule(counts, rules, hold, band), model)
        c = compare(comp.points, metrics, comp.oracle, comp.target_utilisation)
        plain[_key(p)] = verdict(c)
    return {
        "group": case.group,
        "case": case.name,
        "llmroute": verdict(comp),
        "plain": plain,
    }


def verdict(c: Comparison) -> dict[str, Any]:
    """One schedule's verdict on a case: ``ok`` (every target met) and each check's ratio."""
    return {"ok": c.ok, **{check.name: round(check.value, 4) for check in c.checks}}


def suite_arguments(parser: argparse.ArgumentParser) -> None:
    """The cases (:func:`bench.sim_frontier.add_case_arguments`), ``--heldout-dir`` and ``--jobs``."""
    add_case_arguments(parser)
    parser.add_argument(
        "--heldout-dir", type=Path, help="a second folder, scored with the set chosen on the first"
    )
    parser.add_argument("--jobs", type=int, default=1, help="cases simulated in parallel (default 1)")


def tally(rows: list[dict[str, Any]], family: str = "plain") -> dict[str, Any]:
    """Cases meeting every target, per group and in all: llmroute's, and each parameter set's of the rule
    family under ``family`` in every row (``rows[i][family][params]["ok"]``); ``cases`` counts them."""
    groups = sorted({r["group"] for r in rows})
    out: dict[str, Any] = {
        "llmroute": {g: sum(r["llmroute"]["ok"] for r in rows if r["group"] == g) for g in groups},
    }
    out["llmroute"]["all"] = sum(r["llmroute"]["ok"] for r in rows)
    for key in rows[0][family] if rows else ():
        entry = {g: sum(r[family][key]["ok"] for r in rows if r["group"] == g) for g in groups}
        entry["all"] = sum(r[family][key]["ok"] for r in rows)
        out[key] = entry
    out["cases"] = {g: sum(1 for r in rows if r["group"] == g) for g in groups} | {"all": len(rows)}
    return out


def run_cases(run: Callable[[Case], dict[str, Any]], todo: list[Case], jobs: int) -> list[dict[str, Any]]:
    """``run`` over every case, ``jobs`` at a time (``run`` must be a module-level function)."""
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            return list(pool.map(run, todo))
    return [run(c) for c in todo]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_plain", description=__doc__)
    suite_arguments(parser)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    groups = tuple(args.group or ("trace", "day", "synthetic"))
    dev_rows = run_cases(run_case, cases(args.traces_dir, groups), args.jobs)
    if not dev_rows:
        print(json.dumps({"error": f"no cases (no traces in {args.traces_dir}?)"}))
        return 1
    dev = tally(dev_rows)
    chosen = max((k for k in dev if k not in ("llmroute", "cases")), key=lambda k: (dev[k]["all"], k))
    out: dict[str, Any] = {
        "benchmark": "sim_plain",
        "grid": {"quantile": QUANTILES, "window_minutes": WINDOWS, "hold_minutes": HOLDS, "band": BANDS},
        "chosen_on_first_folder": chosen,
        "first_folder": {
            "dir": str(args.traces_dir),
            "cases": dev["cases"],
            "llmroute": dev["llmroute"],
            "plain_chosen": dev[chosen],
            "plain_best_per_group": {
                g: max(v[g] for k, v in dev.items() if k not in ("llmroute", "cases")) for g in dev["cases"]
            },
            "plain_by_params": {k: v for k, v in dev.items() if k not in ("llmroute", "cases")},
        },
    }
    if args.heldout_dir is not None:
        held_rows = run_cases(
            run_case, cases(args.heldout_dir, tuple(g for g in groups if g != "synthetic")), args.jobs
        )
        held = tally(held_rows)
        out["second_folder"] = {
            "dir": str(args.heldout_dir),
            "cases": held["cases"],
            "llmroute": held["llmroute"],
            "plain_chosen": held[chosen],
            "plain_best_any_params": max(v["all"] for k, v in held.items() if k not in ("llmroute", "cases")),
            "plain_by_params": {k: v for k, v in held.items() if k not in ("llmroute", "cases")},
        }
    out["total_seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
