"""The first step of a decision: which of the observed numbers can be trusted this cycle, the
``MetricsAvailable`` condition that says so, and the per-minute load series the scaling core reads."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from llmroute.core.observed import MetricKey, RouteMetrics, duration_seconds, load_key
from llmroute.core.series import LoadSeries
from llmroute.decide.model import Observed
from llmroute.decide.report import StatusReport
from llmroute.spec.route import LLMRoute


@dataclass(frozen=True)
class LoadView:
    """The trusted part of this cycle's metrics.

    ``values``: the route's numbers if they are fresh (within ``fallback.staleAfterSeconds``), else empty;
    ``usable``: the metrics are fresh *and* the last Prometheus cycle succeeded (health and load are judged
    only then); ``load``: the scaling metric's value when usable; ``series``/``decision_time``: what the
    scaling core decides on (an empty series when the load is not usable: never a stale figure, never
    zero)."""

    metrics: RouteMetrics | None
    values: dict[MetricKey, float]
    usable: bool
    load: float | None
    series: LoadSeries
    decision_time: datetime
    short_since: float | None = None  # since when the rate window has held fewer than two samples


def observe_load(route: LLMRoute, obs: Observed, saved: dict[str, Any], report: StatusReport) -> LoadView:
    """Judge the metrics' freshness, set ``MetricsAvailable``, and build the load series."""
    spec, now, metrics = route.spec, obs.now, obs.metrics
    key = load_key(spec.scaling.metric.type)
    stale_after = timedelta(seconds=spec.scaling.fallback.stale_after_seconds)
    fresh = metrics is not None and now - datetime.fromtimestamp(metrics.time, UTC) <= stale_after
    refused = metrics.query_errors if (fresh and metrics is not None) else ()
    usable = fresh and not obs.metrics_error and not refused
    load = metrics.values.get(key) if (usable and metrics is not None) else None
    short_since = _short_since(route, metrics if fresh else None, saved, now.timestamp())
    if obs.metrics_error:
        report.set("MetricsAvailable", "False", "PrometheusUnavailable", obs.metrics_error)
    elif refused:  # the route's own PromQL: hold (never scale on part of the figures) and name the field
        report.set("MetricsAvailable", "False", "QueryRefused", "; ".join(refused), announce=True)
    elif load is None:
        reason, message = _missing(route, metrics if fresh else None, short_since, now.timestamp())
        # a window too short for the scrape interval never heals by itself: say so even on a new route
        report.set("MetricsAvailable", "False", reason, message, announce=reason == "RateWindowTooShort")
    else:
        message = f"{spec.scaling.metric.type} is being reported" + _window_too_long(metrics)
        report.set("MetricsAvailable", "True", "Available", message)
    if load is not None and metrics is not None:
        series, decision_time = minutes_until_now(obs, load, duration_seconds(metrics.rate_window))
    else:
        series, decision_time = LoadSeries.empty(now, obs.history_step), now
    values = dict(metrics.values) if (fresh and metrics is not None) else {}
    return LoadView(metrics if fresh else None, values, usable, load, series, decision_time, short_since)


def _short_since(
    route: LLMRoute, metrics: RouteMetrics | None, saved: dict[str, Any], now: float
) -> float | None:
    """Since when (unix seconds) the route's counters have had fewer than two samples in the rate window,
    or ``None`` while they have enough (or there is nothing to count)."""
    counted = metrics.samples_in_window if metrics is not None else None
    rated = route.spec.scaling.metric.type in ("RequestsPerSecond", "TokensPerSecond")
    if not rated or counted is None or counted >= 2:
        return None
    previous = saved.get("shortSince")
    return float(previous) if isinstance(previous, int | float) and previous <= now else now


def _missing(
    route: LLMRoute, metrics: RouteMetrics | None, short_since: float | None, now: float
) -> tuple[str, str]:
    """Why the route has no load figure: a rate window too short for the scrape interval (the counters
    are there, but with fewer than two samples in the window no rate exists — for longer than a restart
    of Prometheus or of the proxies explains: two windows, at least two minutes), or no data at all."""
    kind = route.spec.scaling.metric.type
    if metrics is None:
        return "NoData", f"no fresh samples of {kind}"
    window = duration_seconds(metrics.rate_window)
    counted = metrics.samples_in_window
    if short_since is not None and counted is not None and now - short_since >= max(2 * window, 120.0):
        return "RateWindowTooShort", (
            f"{counted:.0f} sample(s) of the route's request counters in the {metrics.rate_window} rate "
            "window, and a rate needs two: Prometheus scrapes the proxies less often than the window "
            "allows. Set the scrape interval llmroute assumes to Prometheus' own, so the window spans four "
            "scrapes: spec.prometheus.scrapeIntervalSeconds on the route, or for every route the operator's "
            "LLMROUTE_SCRAPE_INTERVAL_SECONDS (the chart's scrapeIntervalSeconds)."
        )
    return "NoData", f"no fresh samples of {kind} over the {metrics.rate_window} rate window"


LONG_WINDOW_SCRAPES = 8  # twice the four scrapes a rate window is meant to span


def _window_too_long(metrics: RouteMetrics | None) -> str:
    """A note when the rate window holds at least :data:`LONG_WINDOW_SCRAPES` samples of a counter: the
    operator was told a longer scrape interval than Prometheus uses, so a change in load shows in full
    only a whole (needlessly long) window later. Empty otherwise."""
    counted = metrics.samples_in_window if metrics is not None else None
    if metrics is None or counted is None or counted < LONG_WINDOW_SCRAPES:
        return ""
    window = duration_seconds(metrics.rate_window)
    return (
        f"; the {metrics.rate_window} rate window holds {counted:.0f} scrapes, so Prometheus scrapes the "
        f"proxies at least every {window / counted:.3g} s and a change in load takes {window:.0f} s to show "
        "in full: tell the operator the real interval (spec.prometheus.scrapeIntervalSeconds on the route, "
        "or the chart's scrapeIntervalSeconds) for a window of four scrapes"
    )


def minutes_until_now(obs: Observed, latest: float, rate_window: float = 60.0) -> tuple[LoadSeries, datetime]:
    """Whole-minute history whose last complete minute holds the latest trailing-minute rate.

    The core decides on minute buckets complete at its ``now``. The operator's freshest figure is the
    rate over the minute ending *now*, newer than the last whole minute in the history: it stands in for
    that last minute (it covers it within less than a minute), so decisions use the freshest load while
    ``now`` — and with it every stabilisation window and policy period — stays exact.

    A rate taken over a window (``rate_window`` seconds) that reaches into a metrics gap covers part of
    the window only and reads low, never high. So every minute within ``rate_window`` of a missing minute
    (before it, as the gap may begin inside its window, and after it) is missing too; and while the
    latest figure's own window may reach into a gap, it counts no lower than the last figure before the
    gap. A gap never turns into a scale-down, while a real rise still scales up at once.
    """
    start = datetime.fromtimestamp(obs.history_start, UTC)
    minutes = LoadSeries(start=start, step_seconds=obs.history_step, values=obs.history).to_minutes()
    last_complete = int(obs.now.timestamp() // 60) * 60 - 60
    first = int(minutes.start.timestamp()) if len(minutes) else last_complete
    first = min(first, last_complete)
    size = (last_complete - first) // 60 + 1
    values = np.full(size, np.nan)
    keep = min(len(minutes), size - 1)
    values[:keep] = minutes.values[:keep]
    reach = math.ceil(rate_window / 60)
    values[:-1] = _around_gaps_missing(values[:-1], reach)  # the last slot is the latest figure's
    values[-1] = max(latest, _before_recent_gap(values[:-1], reach + 1))
    return LoadSeries(datetime.fromtimestamp(first, UTC), 60, values), obs.now


def _around_gaps_missing(values: npt.NDArray[np.float64], reach: int) -> npt.NDArray[np.float64]:
    """``values`` with the ``reach`` minutes on each side of a missing minute marked missing as well
    (missing minutes before the first value are the start of history, not a gap)."""
    present = np.flatnonzero(~np.isnan(values))
    if present.size == 0 or reach <= 0:
        return values
    out = values.copy()
    for gap in np.flatnonzero(np.isnan(values)):
        if gap > present[0]:
            out[max(int(present[0]), gap - reach) : gap + 1 + reach] = np.nan
    return out


def _before_recent_gap(history: npt.NDArray[np.float64], recent: int) -> float:
    """The last figure before a gap among the ``recent`` last minutes of ``history``, or -inf when
    those minutes hold no gap (or the history has no figure before it)."""
    present = np.flatnonzero(~np.isnan(history))
    if present.size == 0:
        return -math.inf
    tail = history[max(present[0] + 1, len(history) - recent) :]
    if not np.isnan(tail).any():
        return -math.inf
    start = len(history) - len(tail)
    before = present[present < start + int(np.flatnonzero(np.isnan(tail))[0])]
    return float(history[before[-1]]) if before.size else -math.inf
