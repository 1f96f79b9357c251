"""The demo's picture of the run: the Grafana dashboard's main panels (``Panel.main`` in
:mod:`llmroute_dev.monitoring.panels`), drawn with matplotlib from the very same queries, asked of the demo's
Prometheus over its HTTP API for the run's time range. A newcomer without Grafana sees the dashboard too.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from llmroute_dev.monitoring import files
from llmroute_dev.monitoring.panels import panels
from llmroute_dev.monitoring.promql import Panel, concrete, route_regex
from llmroute_dev.prometheus import Prometheus

DASHBOARD = Path(__file__).resolve().parents[3] / files.DASHBOARD
SCALE = {"percentunit": (100.0, "%"), "s": (1000.0, "ms"), "reqps": (1.0, "req/s")}


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's legend format: ``{{label}}`` replaced by the series' label value."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()


def _series(prom: Prometheus, panel: Panel, route: str, start: float, end: float, step: float) -> list[Any]:
    rate_interval = f"{max(4 * step, 15):.0f}s"
    out = []
    for query in panel.queries:
        promql = concrete(query.expr, route=route_regex(route), rate_interval=rate_interval)
        for series in prom.query_range(promql, start, end, step):
            points = [(float(t) - start, float(v)) for t, v in series["values"]]
            points = [(t, v) for t, v in points if math.isfinite(v)]
            if points:
                out.append((legend(query.legend, series["metric"]), points))
    return out


def save(prom: Prometheus, route: str, start: float, end: float, path: Path) -> Path:
    """Draw the main panels for ``route`` (``namespace/name``) between ``start`` and ``end`` (unix
    seconds) into the PNG at ``path``. Raises ``RuntimeError`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is a dev dependency
        raise RuntimeError("the demo's picture needs matplotlib: pip install 'llmroute[plot]'") from exc
    main = [p for p in panels() if p.main]
    step = max(2.0, (end - start) / 300)
    cols = 2
    rows = math.ceil(len(main) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(14, 3.1 * rows), sharex=True, squeeze=False)
    for ax, panel in zip(axes.flat, main, strict=False):
        factor, unit = SCALE.get(panel.unit, (1.0, ""))
        drawn = _series(prom, panel, route, start, end, step)
        for label, points in drawn:
            ax.plot([t for t, _ in points], [v * factor for _, v in points], label=label, linewidth=1.2)
        ax.set_title(panel.title, fontsize=10, loc="left")
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)  # every panel shows a rate, a ratio, a duration or a count
        if drawn:
            ax.legend(fontsize=7, loc="upper left", ncol=2)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
    for ax in axes.flat[len(main) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("seconds since the traffic started", fontsize=8)
    fig.suptitle(f"llmroute dashboard, main panels: route {route}", fontsize=12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
