"""The report's Prometheus source: days of a route's hourly traffic from the proxy's own metrics.

For the time-of-day picture when access logs are not kept. One range query per figure at a one-hour step
over ``increase(...[1h])`` (so each sample is the hour that ends at its timestamp), fetched in chunks of a
week: requests and tokens of the route, requests by tier, by status code and by cache state, rate-limited
requests by tier, and each tier's busiest minute of every hour (a subquery over 1-minute rates). An hour
with no sample is missing (NaN), never zero. Prometheus has no per-client label (its cardinality would
be unbounded), so this source cannot segment clients. Auth: :class:`llmroute.prom.client.PromAuth`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from llmroute.prom.client import PromAuth, PromClient
from llmroute.sim.hourly import HourlySeries

CHUNK_HOURS = 7 * 24


@dataclass(frozen=True)
class PromUsage:
    """Hourly figures of one route; breakdowns are totals over the whole range by label value."""

    series: HourlySeries
    by_tier: dict[str, float]
    by_code: dict[str, float]
    by_cache: dict[str, float]
    ratelimited_by_tier: dict[str, float]
    tier_peak_minute: dict[str, list[float]]  # tier -> the busiest minute's requests of every hour


def _selector(route: str) -> str:
    escaped = route.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{route="{escaped}"}}'


def queries(route: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (PromQL, grouping labels) of every figure, for ``route`` (``namespace/name``)."""
    sel = _selector(route)
    req, tok = f"llmroute_requests_total{sel}", f"llmroute_tokens_total{sel}"
    return {
        "requests": (f"sum(increase({req}[1h]))", ()),
        "tokens": (f"sum(increase({tok}[1h]))", ()),
        "by_tier": (f"sum by (tier) (increase({req}[1h]))", ("tier",)),
        "by_code": (f"sum by (code) (increase({req}[1h]))", ("code",)),
        "by_cache": (f"sum by (cache) (increase({req}[1h]))", ("cache",)),
        "ratelimited": (f"sum by (tier) (increase(llmroute_ratelimited_total{sel}[1h]))", ("tier",)),
        "tier_peak": (f"max_over_time((60 * sum by (tier) (rate({req}[2m])))[1h:1m])", ("tier",)),
    }


def fetch(
    url: str,
    route: str,
    days: int,
    now: datetime,
    auth: PromAuth | None = None,
    timeout: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> PromUsage:
    """``days`` of ``route`` up to the last full hour before ``now``; raises
    :class:`llmroute.prom.client.PrometheusError` when Prometheus cannot answer."""
    client = PromClient(url, timeout=timeout, auth=auth)
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    hours = days * 24
    arrays: dict[str, dict[tuple[str, ...], np.ndarray]] = {}
    for name, (query, labels) in queries(route).items():
        out: dict[tuple[str, ...], np.ndarray] = {}
        for first in range(0, hours, CHUNK_HOURS):
            a = start + timedelta(hours=first + 1)  # the sample at a covers the hour before it
            b = start + timedelta(hours=min(first + CHUNK_HOURS, hours))
            for key, samples in client.range(query, a, b, 3600, labels=labels).items():
                values = out.setdefault(key, np.full(hours, np.nan))
                for t, v in samples:
                    index = round((t - start.timestamp()) / 3600) - 1
                    if 0 <= index < hours:
                        values[index] = v
        arrays[name] = out
        if progress is not None:
            progress(f"prometheus: {name} ({client.queries_sent} queries)")
    nan = np.full(hours, np.nan)
    series = HourlySeries(start, arrays["requests"].get((), nan), arrays["tokens"].get((), nan))

    def totals(name: str) -> dict[str, float]:
        return {k[0]: float(np.nansum(v)) for k, v in arrays[name].items()}

    peaks = {k[0]: [float(x) for x in v if not math.isnan(x)] for k, v in arrays["tier_peak"].items()}
    return PromUsage(
        series, totals("by_tier"), totals("by_code"), totals("by_cache"), totals("ratelimited"), peaks
    )


def summary(usage: PromUsage) -> dict[str, Any]:
    """The breakdowns, error and rate-limit rates and cache hit ratio as a JSON-ready dict."""
    total = sum(usage.by_code.values())
    errors = sum(v for code, v in usage.by_code.items() if code.startswith("5") or code == "0")
    limited = usage.by_code.get("429", 0.0)
    hits, misses = usage.by_cache.get("hit", 0.0), usage.by_cache.get("miss", 0.0)
    return {
        "requests": total,
        "by_tier": usage.by_tier,
        "by_code": usage.by_code,
        "error_rate": errors / total if total else None,
        "ratelimited_rate": limited / total if total else None,
        "ratelimited_by_tier": usage.ratelimited_by_tier,
        "cache": {
            "hits": hits,
            "misses": misses,
            "hit_ratio": hits / (hits + misses) if hits + misses else None,
        },
        "clients": {"available": False, "note": "Prometheus has no per-client label: use --access-log"},
    }
