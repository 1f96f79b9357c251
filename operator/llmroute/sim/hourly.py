"""The time-of-day picture every report source shares: hourly totals, the weekday x hour heat map, and
peak and quiet hours on the wall clock of a time zone.

:class:`HourlySeries` holds requests and tokens per UTC hour from ``start``; NaN is an hour without data
(a metrics gap, a blank trace cell), never zero traffic, and is left out of every mean. Hours and weekdays
of the profile are local to the time zone, so a daylight-saving change moves them with the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from llmroute.core.series import FloatArray
from llmroute.sim.image import NEEDS_MATPLOTLIB, image_format
from llmroute.spec.times import rfc3339

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PEAK_SHARE = 0.8  # hours at least this share of the busiest hour's median are peak hours
QUIET_SHARE = 0.5  # hours at most this share of it are quiet hours


@dataclass(frozen=True)
class HourlySeries:
    """Per-hour totals from ``start`` (UTC, on the hour): ``requests`` and ``tokens`` (NaN: no data)."""

    start: datetime
    requests: FloatArray
    tokens: FloatArray

    @property
    def hours(self) -> int:
        return int(self.requests.shape[0])


def from_minutes(start: datetime, requests: FloatArray, tokens: FloatArray | None) -> HourlySeries:
    """Hourly totals of a per-minute series that starts at ``start``; an hour is missing (NaN) when any
    of its minutes is, so a gap never reads as a quiet hour. A partial first or last hour is dropped."""
    skip = (60 - start.minute) % 60
    first = start.replace(second=0, microsecond=0) + timedelta(minutes=skip)
    count = (requests.shape[0] - skip) // 60

    def fold(values: FloatArray) -> FloatArray:
        block = values[skip : skip + count * 60].reshape(count, 60)
        out: FloatArray = block.sum(axis=1)  # NaN anywhere in the hour gives NaN
        return out

    tok = fold(tokens) if tokens is not None else np.full(count, np.nan)
    return HourlySeries(first, fold(requests), tok)


def local_keys(series: HourlySeries, tz: ZoneInfo) -> tuple[np.ndarray, np.ndarray]:
    """Local hour of day (0-23) and weekday (0 = Monday) of every hour of ``series``."""
    hours = np.empty(series.hours, dtype=np.int64)
    days = np.empty(series.hours, dtype=np.int64)
    for i in range(series.hours):
        local = (series.start + timedelta(hours=i)).astimezone(tz)
        hours[i], days[i] = local.hour, local.weekday()
    return hours, days


def _means(values: FloatArray, mask: np.ndarray) -> float | None:
    sel = values[mask & ~np.isnan(values)]
    return float(sel.mean()) if sel.size else None


def _medians(values: FloatArray, mask: np.ndarray) -> float | None:
    sel = values[mask & ~np.isnan(values)]
    return float(np.median(sel)) if sel.size else None


def profile(series: HourlySeries, timezone: str) -> dict[str, Any]:
    """Hour-of-day and weekday x hour means, peak and quiet hours, as a JSON-ready dict.

    ``hourly_mean_requests``: 24 means of requests per hour (``None`` where no day covers the hour);
    ``hourly_median_requests``: 24 medians over the days, the typical day the peak and quiet hours are
    read from (one burst on one day moves a mean, not a median: a daily window is for what repeats);
    ``heatmap``: ``{"requests": 7x24, "tokens": 7x24}`` means per weekday (Mon first) and hour;
    ``peak_hours`` / ``quiet_hours``: hours at least :data:`PEAK_SHARE` / at most :data:`QUIET_SHARE` of the
    busiest hour's median, busiest / quietest first.
    """
    tz = ZoneInfo(timezone)
    hours, days = local_keys(series, tz)
    hourly_means = [_means(series.requests, hours == h) for h in range(24)]
    hourly = [_medians(series.requests, hours == h) for h in range(24)]
    hourly_tokens = [_means(series.tokens, hours == h) for h in range(24)]
    heat_req = [[_means(series.requests, (days == d) & (hours == h)) for h in range(24)] for d in range(7)]
    heat_tok = [[_means(series.tokens, (days == d) & (hours == h)) for h in range(24)] for d in range(7)]
    known = [(h, v) for h, v in enumerate(hourly) if v is not None]
    top = max((v for _, v in known), default=0.0)
    peak = [h for h, v in sorted(known, key=lambda x: -x[1]) if top > 0 and v >= PEAK_SHARE * top]
    quiet = [h for h, v in sorted(known, key=lambda x: x[1]) if v <= QUIET_SHARE * top]
    valid = ~np.isnan(series.requests)
    return {
        "timezone": timezone,
        "start": rfc3339(series.start),
        "hours": series.hours,
        "missing_hours": int((~valid).sum()),
        "hourly_mean_requests": hourly_means,
        "hourly_median_requests": hourly,
        "hourly_mean_tokens": hourly_tokens,
        "heatmap": {"weekdays": list(WEEKDAYS), "requests": heat_req, "tokens": heat_tok},
        "peak_hours": peak,
        "quiet_hours": quiet,
        "peak_definition": f"hours whose median over the days is at least {PEAK_SHARE:.0%} of the busiest "
        "hour's",
        "quiet_definition": f"hours whose median over the days is at most {QUIET_SHARE:.0%} of the busiest "
        "hour's",
        "peak_to_quiet_ratio": _ratio(hourly, peak, quiet),
    }


def _ratio(hourly: list[float | None], peak: list[int], quiet: list[int]) -> float | None:
    if not peak or not quiet:
        return None
    hi = float(np.mean([hourly[h] for h in peak]))
    lo = float(np.mean([hourly[h] for h in quiet]))
    return hi / lo if lo > 0 else None


def windows(hours: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive hours (around midnight too) as ``(start, end)`` with ``end`` exclusive, the
    longest first: ``[22, 23, 0, 1, 9]`` gives ``[(22, 2), (9, 10)]``."""
    chosen = set(hours)
    if len(chosen) == 24:
        return [(0, 0)]
    runs: list[tuple[int, int]] = []
    for h in range(24):
        if h in chosen and (h - 1) % 24 not in chosen:
            end = h
            while end % 24 in chosen:
                end += 1
            runs.append((h, end % 24))
    return sorted(runs, key=lambda r: -((r[1] - r[0]) % 24))


SHADES = " .:-=+*#%@"


def render_heatmap(grid: list[list[float | None]], what: str) -> list[str]:
    """A weekday x hour grid as text lines: one character per hour, darker is busier (blank: the least),
    ``?`` no data; one line saying so when no cell has data (no full clock hour)."""
    known = [v for row in grid for v in row if v is not None]
    if not known:
        return [f"{what} per hour, weekday x local hour: no full clock hour of data, no heat map"]
    top = max(known)
    lines = [f"{what} per hour, weekday x local hour (darker is busier, ? no data; max {top:,.0f}):"]
    lines.append("      " + "".join(f"{h:<3d}" for h in range(0, 24, 3)).rstrip())
    for day, row in zip(WEEKDAYS, grid, strict=True):
        cells = []
        for v in row:
            if v is None:
                cells.append("?")
            else:
                level = 0 if top <= 0 else round((len(SHADES) - 1) * v / top)
                cells.append(SHADES[level])
        lines.append(f"  {day} " + "".join(cells))
    return lines


def plot_heatmap(report_profile: dict[str, Any], path: str, title: str) -> None:
    """Save the requests and tokens heat maps as an image (matplotlib, Agg backend); raises
    ``RuntimeError`` when matplotlib is not installed (``pip install llmroute[plot]``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError(NEEDS_MATPLOTLIB) from exc
    heat = report_profile["heatmap"]
    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), constrained_layout=True)
    for ax, key in zip(axes, ("requests", "tokens"), strict=True):
        grid = np.array([[np.nan if v is None else v for v in row] for row in heat[key]], dtype=float)
        image = ax.imshow(grid, aspect="auto", cmap="viridis")
        ax.set_yticks(range(7), heat["weekdays"])
        ax.set_xticks(range(24), [f"{h:02d}" for h in range(24)], fontsize=8)
        ax.set_title(f"{key} per hour (mean), {report_profile['timezone']}")
        fig.colorbar(image, ax=ax)
    fig.suptitle(title)
    fig.savefig(path, dpi=100, format=image_format(path))
    plt.close(fig)
