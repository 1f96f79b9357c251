"""Client segments: heavy, regular and occasional clients, told apart by requests per active day and by
active days, with the share of traffic each sends and its error and rate-limit rates.

A client's *active days* are the local calendar days it sent at least one request on; its *requests per
active day* is its request count over those days. With ``m`` the median client's requests per active day
and ``D`` the days the log spans:

* heavy: requests per active day at least ``heavy_factor x m``;
* occasional (not heavy): active on fewer than ``occasional_share x D`` days, or fewer than
  ``occasional_requests_per_day`` requests per active day;
* regular: every other client.

The thresholds are relative to the median where a fixed figure would not fit every gateway, fixed where a
relative one would call half of every population occasional; the report prints them with their values.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from llmroute.sim.logstats import ClientStats, LogStats

SEGMENTS = ("heavy", "regular", "occasional")


@dataclass(frozen=True)
class Thresholds:
    heavy_factor: float = 5.0
    occasional_share: float = 0.25
    occasional_requests_per_day: float = 10.0


def classify(stats: LogStats, thresholds: Thresholds = Thresholds()) -> tuple[dict[str, str], dict[str, Any]]:
    """Each client's segment, and the thresholds as applied (with their values) for the report."""
    days = max(stats.local_days(), 1)
    rpd = {cid: c.requests / max(len(c.days), 1) for cid, c in stats.clients.items()}
    median = statistics.median(rpd.values()) if rpd else 0.0
    heavy_min = thresholds.heavy_factor * median
    active_min = thresholds.occasional_share * days
    segment: dict[str, str] = {}
    for cid, c in stats.clients.items():
        if median > 0 and rpd[cid] >= heavy_min and rpd[cid] > median:
            segment[cid] = "heavy"
        elif len(c.days) < active_min or rpd[cid] < thresholds.occasional_requests_per_day:
            segment[cid] = "occasional"
        else:
            segment[cid] = "regular"
    applied = {
        "days_in_log": days,
        "median_requests_per_active_day": median,
        "heavy": f"at least {thresholds.heavy_factor:g} x the median client's requests per active day "
        f"(>= {heavy_min:,.1f})",
        "occasional": f"active on fewer than {thresholds.occasional_share:.0%} of the {days} days in the log "
        f"(< {active_min:g} days) or fewer than {thresholds.occasional_requests_per_day:g} requests per "
        "active day",
        "regular": "every other client",
    }
    if days < 4:
        applied["note"] = (
            f"the log spans {days} day(s): too few for active days to tell regular from occasional "
            "clients, so requests per active day decide"
        )
    return segment, applied


def _rate(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def summary(
    stats: LogStats, thresholds: Thresholds = Thresholds(), top: int = 10
) -> tuple[dict[str, Any], dict[str, str]]:
    """Segments with their traffic shares and rates, the top clients and the thresholds used; and each
    client's segment."""
    segment, applied = classify(stats, thresholds)
    total_req = stats.requests
    total_tok = sum(c.tokens for c in stats.clients.values())
    groups: dict[str, list[ClientStats]] = {s: [] for s in SEGMENTS}
    for cid, c in stats.clients.items():
        groups[segment[cid]].append(c)
    out: dict[str, Any] = {}
    for name, members in groups.items():
        req = sum(c.requests for c in members)
        out[name] = {
            "clients": len(members),
            "requests": req,
            "requests_share": _rate(req, total_req),
            "tokens_share": _rate(sum(c.tokens for c in members), total_tok),
            "error_rate": _rate(sum(c.errors for c in members), req),
            "ratelimited_rate": _rate(sum(c.ratelimited for c in members), req),
        }
    anon = stats.anonymous
    ranked = sorted(stats.clients.items(), key=lambda kv: -kv[1].requests)[:top]
    report = {
        "available": bool(stats.clients),
        "clients": len(stats.clients),
        "thresholds": applied,
        "segments": out,
        "without_client_id": {
            "requests": anon.requests,
            "requests_share": _rate(anon.requests, total_req),
            "error_rate": _rate(anon.errors, anon.requests),
            "ratelimited_rate": _rate(anon.ratelimited, anon.requests),
        },
        "top_clients": [
            {
                "client": cid,
                "segment": segment[cid],
                "tier": c.tier,
                "requests": c.requests,
                "requests_share": _rate(c.requests, total_req),
                "active_days": len(c.days),
                "requests_per_active_day": c.requests / max(len(c.days), 1),
                "peak_requests_per_minute": c.peak_minute,
                "ratelimited_rate": _rate(c.ratelimited, c.requests),
            }
            for cid, c in ranked
        ],
    }
    return report, segment
