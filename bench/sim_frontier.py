"""Benchmark: llmroute against HPA's cost frontier on every trace we have or can make (prints JSON).

Cases, in three groups:

* ``trace`` - every ``*.csv`` in the traces folder, whole;
* ``day`` - every one-day cut of those traces (minutes ``[k x 1440, (k+1) x 1440)`` from the trace's start),
  replayed on its own: no history before it, scaled to its own busiest minute;
* ``synthetic`` - the fixed-seed stress traces of :mod:`llmroute.sim.synthetic`.

Each case runs as ``llmroute simulate --trace T --peak-replicas 40 --capacity-rps 50 --startup-seconds 60``
with the default route, and the simulator's own frontier comparison is read out. Targets per case:
under-provisioned minutes at most 0.8x HPA's at the same replica-minutes (HPA swept over target
utilisations at the same metrics lag, interpolated; the aim is 0.5x), replica-minutes at most 1.35x the
oracle's, scale events per hour at most 2x HPA's at u=0.8. Cases are listed worst first (by the largest
``value / limit`` of the three), and each group gets its median and worst of every ratio.

Every case also carries ``bounds`` and a ``verdict`` (:mod:`bench.sim_bounds`, where the bounds are
derived): for a case that misses a target, whether the under-provisioning target is reachable at
llmroute's cost (capped at 1.35x the oracle's) - ``infeasible by construction`` (the jump bound: beyond
any policy that never holds more than HPA's most generous sweep point over the last hour's peak),
``infeasible at constant headroom`` (beyond any policy holding the headroom over the recent peak it can
afford at every minute), or ``feasible, not reached`` - with the clairvoyant bound, and a simple causal
rule that meets every target when one does (``witness``).

Usage: ``python -m bench.sim_frontier [--traces-dir DIR] [--group G ...] [--jobs N] [--markdown]``
(default folder ``$LLMROUTE_TRACES`` or /work/shared/traces). With ``--jobs`` above 1, run it under the
shared heavy lock.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.sim_bounds import feasibility
from llmroute.sim.run import SimulationSettings, simulate
from llmroute.sim.synthetic import SUITE, synthetic
from llmroute.sim.trace import Trace, read_trace

SETTINGS = SimulationSettings(capacity_rps=50.0, startup_seconds=60.0, peak_replicas=40.0)
DAY = 1440
SEVEN_DAYS = 7 * DAY
GROUPS = ("trace", "day", "synthetic")
RATIOS = ("under_vs_hpa", "cost_vs_oracle", "events_vs_hpa")
LIMITS = {"under_vs_hpa": 0.8, "cost_vs_oracle": 1.35, "events_vs_hpa": 2.0}
CHECK_NAMES = {
    "under_provisioned_vs_hpa_same_cost": "under_vs_hpa",
    "replica_minutes_vs_oracle": "cost_vs_oracle",
    "scale_events_vs_hpa_at_target": "events_vs_hpa",
}


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    source: str  # a file path, or "synthetic:<name>"
    first: int = 0  # minute of the source the case starts at
    minutes: int | None = None  # None: to the end


def cases(folder: Path, groups: tuple[str, ...] = GROUPS) -> list[Case]:
    """Every case of the selected ``groups`` (the folder is only read for ``trace`` and ``day``)."""
    out: list[Case] = []
    found = [*folder.glob("*.csv"), *folder.glob("*.csv.gz")] if {"trace", "day"} & set(groups) else []
    for path in sorted(found):
        if "trace" in groups:
            out.append(Case("trace", path.name, str(path)))
        if "day" in groups:
            days = read_trace(path).minutes // DAY
            stem = path.name.removesuffix(".gz").removesuffix(".csv")
            for k in range(days if days > 1 else 0):
                out.append(Case("day", f"{stem}[day {k}]", str(path), k * DAY, DAY))
    if "synthetic" in groups:
        out += [Case("synthetic", name, f"synthetic:{name}") for name in SUITE]
    return out


def load(case: Case) -> Trace:
    if case.source.startswith("synthetic:"):
        trace = synthetic(case.source.split(":", 1)[1])
    else:
        trace = read_trace(case.source)
    if case.minutes is None and case.first == 0:
        return trace
    count = trace.minutes - case.first if case.minutes is None else case.minutes
    return trace.cut(case.first, count, case.name)


def _ratio(value: float) -> float | str:
    return "inf" if math.isinf(value) else round(value, 4)


def run_case(case: Case) -> dict[str, Any]:
    """Simulate one case and return its row: the three ratios, the raw figures behind them, and timing."""
    trace = load(case)
    began = time.perf_counter()
    result = simulate(trace, None, SETTINGS, detail=False)
    seconds = time.perf_counter() - began
    comp = result.comparison
    assert comp is not None
    ratios = {CHECK_NAMES[c.name]: c.value for c in comp.checks}
    llm, hpa8 = comp.llmroute, comp.hpa_at_target
    bounds = feasibility(
        result.demand,
        SETTINGS.model,
        result.spec,
        comp.points,
        comp.oracle.replica_minutes,
        llm.replica_minutes,
        hpa8.events_per_hour,
    )
    return {
        "group": case.group,
        "case": case.name,
        "minutes": trace.minutes,
        "seconds": round(seconds, 3),
        **{k: _ratio(v) for k, v in ratios.items()},
        "score": _ratio(max(v / LIMITS[k] for k, v in ratios.items())),
        "ok": comp.ok,
        "llmroute_under_minutes": llm.under_minutes,
        "hpa_under_minutes_at_same_cost": round(comp.hpa_under_at_cost, 2),
        "llmroute_replica_minutes": round(llm.replica_minutes),
        "oracle_replica_minutes": round(comp.oracle.replica_minutes),
        "llmroute_events_per_hour": round(llm.events_per_hour, 3),
        "hpa_u0.8_events_per_hour": round(hpa8.events_per_hour, 3),
        "llmroute_peak_replicas": llm.peak_replicas,
        "cost_within_sweep": comp.in_range,
        "verdict": "met" if comp.ok else bounds.verdict,
        "bounds": bounds.as_dict(),
    }


def _num(value: float | str) -> float:
    return math.inf if value == "inf" else float(value)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per group: cases, cases within every target, and the median and worst of each ratio."""
    out: dict[str, Any] = {}
    for group in GROUPS:
        sel = [r for r in rows if r["group"] == group]
        if not sel:
            continue
        entry: dict[str, Any] = {
            "cases": len(sel),
            "within_targets": sum(1 for r in sel if r["ok"]),
            "verdicts": dict(sorted(Counter(r["verdict"] for r in sel).items())),
        }
        for key in RATIOS:
            values = [_num(r[key]) for r in sel]
            worst = max(sel, key=lambda r: _num(r[key]))
            entry[key] = {
                "median": _ratio(statistics.median(values)),
                "worst": _ratio(max(values)),
                "worst_case": worst["case"],
            }
        out[group] = entry
    return out


def markdown(rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = [
        "| group | case | under-prov. vs HPA same cost (≤ 0.8) | replica-min vs oracle (≤ 1.35) "
        "| events/h vs HPA u=0.8 (≤ 2) | llmroute / HPA under-min | bounds: limit; jump, constant headroom "
        "| verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b = r["bounds"]
        lines.append(
            f"| {r['group']} | {r['case']} | {r['under_vs_hpa']} | {r['cost_vs_oracle']} "
            f"| {r['events_vs_hpa']} | {r['llmroute_under_minutes']} / "
            f"{r['hpa_under_minutes_at_same_cost']} | {b['under_limit_at_cost']}; {b['jump_bound']}, "
            f"{b['constant_headroom_bound']} | {r['verdict']} |"
        )
    for group, s in summary.items():
        for stat in ("median", "worst"):
            cells = " | ".join(str(s[k][stat]) for k in RATIOS)
            lines.append(f"| {group} | **{stat}** ({s['within_targets']}/{s['cases']} ok) | {cells} | | | |")
    return "\n".join(lines)


def add_case_arguments(parser: argparse.ArgumentParser) -> None:
    """``--traces-dir`` and ``--group``: which cases a benchmark over :func:`cases` runs."""
    parser.add_argument(
        "--traces-dir",
        type=Path,
        default=Path(os.environ.get("LLMROUTE_TRACES", "/work/shared/traces")),
        help="folder of per-minute trace CSVs (default $LLMROUTE_TRACES or /work/shared/traces)",
    )
    parser.add_argument("--group", action="append", choices=GROUPS, help="run only these groups")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_frontier", description=__doc__)
    add_case_arguments(parser)
    parser.add_argument("--jobs", type=int, default=1, help="cases simulated in parallel (default 1)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table instead of JSON")
    args = parser.parse_args(argv)
    todo = cases(args.traces_dir, tuple(args.group or GROUPS))
    if not todo:
        print(json.dumps({"error": f"no cases (no traces in {args.traces_dir}?)"}))
        return 1
    began = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(run_case, todo))
    else:
        rows = [run_case(c) for c in todo]
    rows.sort(key=lambda r: -_num(r["score"]))
    summary = summarise(rows)
    if args.markdown:
        print(markdown(rows, summary))
        return 0
    long_runs = [r["seconds"] for r in rows if r["minutes"] >= SEVEN_DAYS]
    out = {
        "benchmark": "sim_frontier",
        "settings": {"peak_replicas": 40, "capacity_rps": 50, "startup_seconds": 60, "route": "default"},
        "targets": LIMITS,
        "summary": summary,
        "cases": rows,
        "seven_day_seconds": max(long_runs) if long_runs else None,
        "total_seconds": round(time.perf_counter() - began, 1),
        "all_targets_met": all(r["ok"] for r in rows),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
