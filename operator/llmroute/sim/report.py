"""Usage patterns of a trace: daily shape, peaks and troughs, surges, weekdays, clients (when present).

Peak and trough hours are named only from at least :data:`MIN_PEAK_MINUTES` minutes with data and some
traffic; minutes without data are left out of every figure, never read as zero.

Everything is computed from the per-minute request counts; hours and weekdays are on the wall clock of the
chosen time zone. An aggregate trace (no ``client`` column) cannot tell heavy from occasional clients, and
the report says so rather than guessing.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from llmroute.core.series import FloatArray
from llmroute.sim.trace import Trace
from llmroute.spec.times import rfc3339

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SURGE_BLOCK = 10  # minutes
SURGE_CONTEXT = 120  # minutes around a block it is compared with
SURGE_RATIO = 1.5
MIN_PEAK_MINUTES = 60  # minutes with data before an hour is called a peak or a trough


def _local_hours_and_days(trace: Trace, tz: ZoneInfo) -> tuple[np.ndarray, np.ndarray]:
    hours = np.zeros(trace.minutes, dtype=np.int64)
    days = np.zeros(trace.minutes, dtype=np.int64)
    # wall-clock offsets change rarely: walk in hour steps and fill each hour's minutes
    for first in range(0, trace.minutes, 60):
        local = (trace.start + timedelta(minutes=first)).astimezone(tz)
        for i in range(first, min(first + 60, trace.minutes)):
            when = local + timedelta(minutes=i - first)
            hours[i] = when.hour
            days[i] = when.weekday()
    return hours, days


def _profile(values: FloatArray, keys: np.ndarray, size: int) -> list[float | None]:
    out: list[float | None] = []
    for k in range(size):
        sel = values[(keys == k) & ~np.isnan(values)]
        out.append(float(sel.mean()) if sel.size else None)
    return out


def surges(values: FloatArray, start_index: int = 0) -> list[dict[str, Any]]:
    """10-minute blocks at least 1.5x the median load of the two hours around them."""
    found: list[dict[str, Any]] = []
    n = values.shape[0]
    for b in range(0, n - SURGE_BLOCK + 1, SURGE_BLOCK):
        block = values[b : b + SURGE_BLOCK]
        lo, hi = max(0, b - SURGE_CONTEXT // 2), min(n, b + SURGE_BLOCK + SURGE_CONTEXT // 2)
        context = values[lo:hi]
        ctx = context[~np.isnan(context)]
        blk = block[~np.isnan(block)]
        if not ctx.size or not blk.size:
            continue
        base = float(np.median(ctx))
        if base > 0 and float(blk.mean()) >= SURGE_RATIO * base:
            found.append({"index": start_index + b, "ratio": float(blk.mean()) / base})
    return found


def analyse(trace: Trace, timezone: str = "UTC") -> dict[str, Any]:
    """The report as a dict (see :func:`render` for text)."""
    tz = ZoneInfo(timezone)
    req = trace.requests
    valid = ~np.isnan(req)
    hours, days = _local_hours_and_days(trace, tz)
    hourly = _profile(req, hours, 24)
    known = [(h, v) for h, v in enumerate(hourly) if v is not None]
    enough = int(valid.sum()) >= MIN_PEAK_MINUTES and float(np.nansum(req)) > 0
    ranked = sorted(known, key=lambda x: x[1], reverse=True) if enough else []
    shown = min(3, (len(known) + 1) // 2)  # a short trace: no hour is both a peak and a trough hour
    peak_hours = [h for h, _ in ranked[:shown]]
    trough_hours = [h for h, _ in ranked[::-1] if h not in peak_hours][:3]
    low = ranked[-1][1] if len(ranked) > 1 else 0.0
    peak_to_trough = ranked[0][1] / low if low > 0 else None
    covered_days = math.ceil(trace.minutes / 1440)
    weekday = _profile(req, days, 7) if trace.minutes >= 7 * 1440 else None
    mean_min = float(np.nanmean(req)) if valid.any() else 0.0
    found = surges(req)
    centred = _centred_ratio(req)
    out: dict[str, Any] = {
        "trace": trace.name,
        "start": rfc3339(trace.start),
        "minutes": trace.minutes,
        "missing_minutes": int((~valid).sum()),
        "timezone": timezone,
        "requests_total": float(np.nansum(req)),
        "requests_per_minute": {"mean": mean_min, "max": float(np.nanmax(req)) if valid.any() else 0.0},
        "hourly_mean_requests_per_minute": hourly,
        "peak_hours": peak_hours,
        "trough_hours": trough_hours,
        "peak_to_trough_ratio": peak_to_trough,
        "weekday_mean_requests_per_minute": None
        if weekday is None
        else dict(zip(WEEKDAYS, weekday, strict=True)),
        "surges": {
            "definition": f"{SURGE_BLOCK}-minute blocks at least {SURGE_RATIO}x the median of the "
            f"{SURGE_CONTEXT} minutes around them",
            "count": len(found),
            "largest": [
                {
                    "time": rfc3339(trace.time_at(s["index"])),
                    "ratio": round(s["ratio"], 3),
                }
                for s in sorted(found, key=lambda s: s["ratio"], reverse=True)[:5]
            ],
        },
        "minute_vs_centred_hour": centred,
        "days_spanned": covered_days,
        "clients": _clients(trace),
    }
    if trace.input_tokens is not None and trace.output_tokens is not None:
        per = {
            "input": _per_request(trace.input_tokens, req),
            "output": _per_request(trace.output_tokens, req),
        }
        if per["input"] is not None and per["output"] is not None:
            out["tokens_per_request"] = per
    notes = []
    if not enough:
        why = (
            "no requests in the minutes"
            if valid.sum() >= MIN_PEAK_MINUTES
            else f"fewer than {MIN_PEAK_MINUTES} minutes"
        )
        notes.append(f"{why} with data: no peak or trough hours")
    if trace.minutes < 1440:
        notes.append("less than a day of data: the hourly profile covers only part of the day")
    if weekday is None:
        notes.append("fewer than 7 days: no weekday profile")
    out["notes"] = notes
    return out


def _per_request(tokens: FloatArray, requests: FloatArray) -> float | None:
    """Tokens per request over the minutes with both counts (a minute missing either is left out of both
    sums); ``None`` when those minutes hold no request."""
    both = ~np.isnan(tokens) & ~np.isnan(requests)
    count = float(requests[both].sum())
    return float(tokens[both].sum()) / count if count > 0 else None


def _active_share(requests: FloatArray) -> float:
    """The share of a client's minutes with data (not NaN) in which it sent requests; 0 without any."""
    known = requests[~np.isnan(requests)]
    return float((known > 0).mean()) if known.size else 0.0


def _centred_ratio(values: FloatArray) -> dict[str, float] | None:
    if values.shape[0] < 60:
        return None
    known = ~np.isnan(values)
    clean = np.where(known, values, 0.0)
    window = np.ones(60)
    centred = np.convolve(clean, window / 60.0, mode="valid")  # the hour starting 30 minutes before
    whole = np.convolve(known.astype(float), window, mode="valid") == 60  # a gap is missing, not zero
    minute = clean[30 : 30 + centred.shape[0]]
    ok = (centred > 0) & whole
    if not ok.any():
        return None
    ratio = minute[ok] / centred[ok]
    return {"p99": float(np.quantile(ratio, 0.99)), "max": float(ratio.max())}


def _clients(trace: Trace) -> dict[str, Any]:
    if not trace.clients:
        return {
            "available": False,
            "note": "aggregate trace (no client column): heavy and occasional clients cannot be told apart",
        }
    totals = sorted(((float(np.nansum(v)), k) for k, v in trace.clients.items()), reverse=True)
    grand = sum(t for t, _ in totals) or 1.0
    active = {k: _active_share(v) for k, v in trace.clients.items()}
    top_n = max(1, math.ceil(len(totals) * 0.1))
    occasional = [k for k, share in active.items() if share < 0.1]
    return {
        "available": True,
        "clients": len(totals),
        "top_10_percent_share": sum(t for t, _ in totals[:top_n]) / grand,
        "heaviest": [
            {"client": k, "share": t / grand, "active_minutes_share": active[k]} for t, k in totals[:5]
        ],
        "occasional_clients": len(occasional),
        "occasional_definition": "active in fewer than 10 % of the trace's minutes with data",
        "occasional_share": sum(float(np.nansum(trace.clients[k])) for k in occasional) / grand,
    }


def render(report: dict[str, Any]) -> str:
    """The report as text."""
    rpm = report["requests_per_minute"]
    lines = [
        f"trace {report['trace']}: {report['minutes']} minutes from {report['start']} "
        f"({report['minutes'] / 1440:.1f} days); {report['requests_total']:,.0f} requests; "
        f"mean {rpm['mean']:,.1f} / max {rpm['max']:,.0f} req/min",
        f"hours are {report['timezone']} wall-clock time",
        "peak hours:   " + (", ".join(f"{h:02d}:00" for h in report["peak_hours"]) or "none"),
        "trough hours: " + (", ".join(f"{h:02d}:00" for h in report["trough_hours"]) or "none"),
    ]
    if report["peak_to_trough_ratio"] is not None:
        lines.append(f"peak-to-trough ratio of hourly means: {report['peak_to_trough_ratio']:.2f}")
    lines.append("hourly mean req/min:")
    hourly = report["hourly_mean_requests_per_minute"]
    top = max((v for v in hourly if v is not None), default=1.0) or 1.0
    for h, v in enumerate(hourly):
        if v is not None:
            lines.append(f"  {h:02d}:00 {v:>12,.1f} {'#' * round(40 * v / top)}")
    s = report["surges"]
    lines.append(f"surges ({s['definition']}): {s['count']}")
    for item in s["largest"]:
        lines.append(f"  {item['time']}  x{item['ratio']:.2f}")
    if report["minute_vs_centred_hour"]:
        c = report["minute_vs_centred_hour"]
        lines.append(f"busiest minute vs its centred hour: max x{c['max']:.2f}, p99 x{c['p99']:.2f}")
    if report["weekday_mean_requests_per_minute"]:
        lines.append("weekday mean req/min (by the trace's timestamps):")
        for day, v in report["weekday_mean_requests_per_minute"].items():
            lines.append(f"  {day} {'-' if v is None else f'{v:,.1f}'}")
    if "tokens_per_request" in report:
        t = report["tokens_per_request"]
        lines.append(f"tokens per request: {t['input']:,.0f} in, {t['output']:,.0f} out")
    c = report["clients"]
    if c["available"]:
        lines.append(
            f"clients: {c['clients']}; the top 10 % send {c['top_10_percent_share']:.0%} of requests; "
            f"{c['occasional_clients']} occasional clients ({c['occasional_definition']}) send "
            f"{c['occasional_share']:.1%}"
        )
        for item in c["heaviest"]:
            active = item["active_minutes_share"]
            lines.append(
                f"  {item['client']}: {item['share']:.1%} of requests, active {active:.0%} of minutes"
            )
    else:
        lines.append(f"clients: {c['note']}")
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)
