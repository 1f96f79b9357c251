"""What a simulation writes: the per-minute timeline CSV, the summary (text or JSON) and the plot."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from llmroute.sim.image import NEEDS_MATPLOTLIB, image_format
from llmroute.sim.run import Result, hpa_names
from llmroute.spec.times import rfc3339

ORDER = ("llmroute", "hpa", "static", "oracle")


def primary(result: Result) -> str:
    return "llmroute" if "llmroute" in result.runs else next(iter(result.runs))


def _fmt(value: float | int | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def write_timeline(result: Result, path: str | Path) -> None:
    """One row per trace minute: the primary policy's decisions and every other policy's replica count."""
    main = primary(result)
    run = result.runs[main]
    cap = result.settings.capacity_rps
    ready = result.ready[main]
    others = [n for n in result.runs if n != main]
    extra = list(run.columns)
    header = [
        "timestamp",
        "demand_rps",
        "desired_replicas",
        "ready_replicas",
        "ready_capacity_rps",
        "under_provisioned",
        "unserved_rps",
        *extra,
        *(f"{n}_desired" for n in others),
        "reason",
    ]
    with Path(path).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for t in range(result.trace.minutes):
            demand = float(result.demand[t])
            capacity = float(ready[t]) * cap
            d = 0.0 if math.isnan(demand) else demand
            gap = max(0.0, d - capacity)
            under = 1 if gap > 1e-9 * max(1.0, cap) else 0
            row: list[Any] = [
                rfc3339(result.trace.time_at(t)),
                _fmt(demand),
                int(run.desired[t]),
                _fmt(round(float(ready[t]), 3)),
                _fmt(capacity),
                under,
                _fmt(gap if under else 0.0),
            ]
            row += [_fmt(run.columns[c][t]) for c in extra]
            row += [int(result.runs[n].desired[t]) for n in others]
            row.append(run.reasons[t] if t < len(run.reasons) else "")
            writer.writerow(row)


def _ordered(result: Result) -> list[str]:
    names = list(result.runs)
    return sorted(names, key=lambda n: (ORDER.index(n.split("@")[0]) if n.split("@")[0] in ORDER else 9, n))


def summary_dict(result: Result) -> dict[str, Any]:
    oracle = result.metrics.get("oracle") or (result.comparison.oracle if result.comparison else None)
    policies: dict[str, Any] = {}
    for name in _ordered(result):
        m = result.metrics[name]
        entry: dict[str, Any] = m.as_dict()
        if oracle is not None and oracle.replica_minutes:
            entry["replica_minutes_vs_oracle"] = round(m.replica_minutes / oracle.replica_minutes, 4)
        if name.startswith("hpa"):
            targets = hpa_names(result.settings.hpa_targets or (round(result.target_utilisation, 6),))
            entry["target_utilisation"] = targets.get(name)
        policies[name] = entry
    s = result.settings
    return {
        "trace": result.trace.name,
        "start": rfc3339(result.trace.start),
        "minutes": result.trace.minutes,
        "settings": {
            "capacity_rps": s.capacity_rps,
            "startup_seconds": s.startup_seconds,
            "peak_replicas": s.peak_replicas,
            "peak_rps": s.peak_rps,
            "route": result.route_source,
            "target_per_replica": result.spec.scaling.metric.target_per_replica,
            "min_replicas": result.spec.proxy.min_replicas,
            "max_replicas": result.spec.proxy.max_replicas,
        },
        "policies": policies,
        "frontier": None if result.comparison is None else result.comparison.as_dict(),
        "notes": result.notes,
        "seconds": round(result.seconds, 3),
    }


def _span(minutes: int) -> str:
    if minutes < 120:
        return ""
    return f" ({minutes / 60:.1f} hours)" if minutes < 1440 else f" ({minutes / 1440:.1f} days)"


def summary_text(result: Result) -> str:
    data = summary_dict(result)
    lines = [
        f"trace {data['trace']}: {data['minutes']} minutes from {data['start']}{_span(data['minutes'])}",
        *result.notes,
        f"capacity: {result.settings.capacity_rps:g} req/s per replica, new replicas serve after "
        f"{result.settings.startup_seconds:g} s; each decision sees load up to the previous minute",
        "",
        f"{'policy':<14}{'replica-min':>12}{'vs oracle':>11}{'under-prov min':>16}{'unserved':>10}"
        f"{'events/h':>10}{'peak':>6}",
    ]
    for name, p in data["policies"].items():
        ratio = p.get("replica_minutes_vs_oracle")
        lines.append(
            f"{name:<14}{p['replica_minutes']:>12,.0f}{'' if ratio is None else f'{ratio:.3f}x':>11}"
            f"{p['under_provisioned_minutes']:>16}{p['unserved_share']:>10.3%}"
            f"{p['scale_events_per_hour']:>10.2f}{p['peak_replicas']:>6}"
        )
    comp = result.comparison
    if comp is not None:
        lines += [
            "",
            "HPA cost frontier (target utilisation sweep, same metrics lag):",
            f"  {'u':>6}{'replica-min':>13}{'vs oracle':>11}{'under-prov min':>16}{'events/h':>10}",
        ]
        for pt in sorted(comp.points, key=lambda p: p.utilisation):
            m = pt.metrics
            base = comp.oracle.replica_minutes
            lines.append(
                f"  {pt.utilisation:>6.3g}{m.replica_minutes:>13,.0f}"
                f"{f'{m.replica_minutes / base:.3f}x' if base else 'n/a':>11}{m.under_minutes:>16}"
                f"{m.events_per_hour:>10.2f}"
            )
        lines.append(
            f"llmroute at {comp.llmroute.replica_minutes:,.0f} replica-minutes: "
            f"{comp.llmroute.under_minutes} under-provisioned minutes; "
            f"HPA at the same cost: {comp.hpa_under_at_cost:.1f}"
            + ("" if comp.in_range else " (outside the sweep, clamped)")
        )
        labels = {
            "under_provisioned_vs_hpa_same_cost": "under-provisioned vs HPA at the same cost",
            "replica_minutes_vs_oracle": "replica-minutes vs oracle",
            "scale_events_vs_hpa_at_target": f"scale events/h vs HPA(u={comp.target_utilisation:g})",
        }
        for c in comp.checks:
            lines.append(
                f"  {labels[c.name]:<44}{'n/a' if c.note else f'{c.value:.3f}':>7}  (target <= {c.limit:g})  "
                f"{'ok' if c.ok else 'MISSED'}" + (f" ({c.note})" if c.note else "")
            )
    lines.append(f"simulated in {result.seconds:.1f} s")
    return "\n".join(lines)


def plot(result: Result, path: str | Path) -> None:
    """Demand, llmroute's ready capacity and every policy's replicas over time (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(NEEDS_MATPLOTLIB) from exc
    times = [result.trace.time_at(t) for t in range(result.trace.minutes)]
    cap = result.settings.capacity_rps
    main = primary(result)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(14, 7), sharex=True)
    top.plot(times, result.demand, lw=0.6, color="black", label="demand (req/s)")
    top.plot(times, result.ready[main] * cap, lw=0.8, color="tab:blue", label=f"{main} ready capacity")
    top.set_ylabel("req/s")
    top.legend(loc="upper right")
    for name in _ordered(result):
        bottom.step(times, result.runs[name].desired, where="post", lw=0.8, label=name)
    bottom.set_ylabel("replicas")
    bottom.legend(loc="upper right")
    fig.suptitle(
        f"{result.trace.name}: {cap:g} req/s per replica, {result.settings.startup_seconds:g} s start-up"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, format=image_format(path))
    plt.close(fig)
