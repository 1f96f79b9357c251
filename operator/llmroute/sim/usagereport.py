"""Assemble the usage report of an access log or of Prometheus, and print it as text.

The sources differ in what they can tell (see :mod:`llmroute.sim.logstats` and
:mod:`llmroute.sim.promsource`); both give the time-of-day picture (:mod:`llmroute.sim.hourly`) and the
recommendations (:mod:`llmroute.sim.recommend`).
"""

from __future__ import annotations

from typing import Any

from llmroute.sim import hourly, patchyaml, segments
from llmroute.sim.logstats import APART_MINUTES, HORIZON, KEY_FIELDS, LogStats, Totals, bin_value, is_error
from llmroute.sim.promsource import PromUsage
from llmroute.sim.promsource import summary as prom_summary
from llmroute.sim.recommend import MAX_LATE, Histogram, ObservedUsage, recommend
from llmroute.spec.times import epoch_rfc3339

DIMENSIONS = ("tier", "endpoint", "model", "stream", "prompt_band")


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _row(t: Totals, errors: float, limited: float, whole: float) -> dict[str, Any]:
    return {
        "requests": t.requests,
        "share": _share(t.requests, whole),
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "error_rate": _share(errors, t.requests),
        "ratelimited_rate": _share(limited, t.requests),
        "mean_latency_ms": _share(t.latency_ms, t.requests),
    }


def breakdowns(stats: LogStats) -> dict[str, dict[str, dict[str, Any]]]:
    """Requests, tokens, error and rate-limit rates and mean latency by each of :data:`DIMENSIONS`."""
    out: dict[str, dict[str, tuple[Totals, list[float]]]] = {d: {} for d in DIMENSIONS}
    status_at = KEY_FIELDS.index("status")
    for key, t in stats.breakdown.items():
        status = key[status_at]
        for dim in DIMENSIONS:
            value = key[KEY_FIELDS.index(dim)]
            name = ("stream" if value else "non-stream") if dim == "stream" else str(value)
            acc, bad = out[dim].setdefault(str(name), (Totals(), [0.0, 0.0]))
            acc.merge(t)
            bad[0] += t.requests if is_error(status) else 0.0
            bad[1] += t.requests if status == 429 else 0.0
    return {
        dim: {
            name: _row(t, bad[0], bad[1], stats.requests)
            for name, (t, bad) in sorted(table.items(), key=lambda kv: -kv[1][0].requests)
        }
        for dim, table in out.items()
    }


def cache_summary(stats: LogStats) -> dict[str, Any]:
    """Hit ratio among cacheable requests and what the hits saved: upstream tokens (the hits' own usage
    when the log has it, else the mean of successful misses) and latency (mean miss minus mean hit, both
    successful)."""
    by_cache = stats.totals("cache")
    ok: dict[str, Totals] = {}
    status_at, cache_at = KEY_FIELDS.index("status"), KEY_FIELDS.index("cache")
    for key, t in stats.breakdown.items():
        if key[status_at] == 200:
            ok.setdefault(str(key[cache_at]), Totals()).merge(t)
    hit, miss = ok.get("hit", Totals()), ok.get("miss", Totals())
    hits = by_cache["hit"].requests if "hit" in by_cache else 0.0
    misses = by_cache["miss"].requests if "miss" in by_cache else 0.0
    mean_miss = (miss.input_tokens + miss.output_tokens) / miss.with_tokens if miss.with_tokens else None
    saved: float | None = None
    if hits and (mean_miss is not None or hit.with_tokens):
        saved = hit.input_tokens + hit.output_tokens + (hit.requests - hit.with_tokens) * (mean_miss or 0.0)
    latency = None
    if hit.requests and miss.requests:
        latency = miss.latency_ms / miss.requests - hit.latency_ms / hit.requests
    return {
        "hits": hits,
        "misses": misses,
        "bypass": by_cache["bypass"].requests if "bypass" in by_cache else 0.0,
        "hit_ratio": _share(hits, hits + misses),
        "upstream_tokens_saved": saved,
        "latency_saved_ms_per_hit": latency,
    }


def _hist_add(into: Histogram, other: Histogram) -> None:
    for k, n in other.items():
        into[k] = into.get(k, 0) + n


def observed_from_log(stats: LogStats, profile: dict[str, Any], segment: dict[str, str]) -> ObservedUsage:
    obs = ObservedUsage(profile)
    if stats.sampled <= MAX_SAMPLED * stats.requests:
        obs.client_paced, obs.tier_paced = stats.client_refusals, stats.tier_refusals
    else:
        obs.per_minute_why = "the log is sampled, so its lines do not give every request's time"
    for (tier, _), (r, t) in stats.tier_minutes.items():
        req = obs.tier_requests.setdefault(tier, {})
        req[round(r)] = req.get(round(r), 0) + 1
        if t > 0:
            tok = obs.tier_tokens.setdefault(tier, {})
            tok[round(t)] = tok.get(round(t), 0) + 1
    for cid, c in stats.clients.items():
        tokens = {round(bin_value(b)): n for b, n in c.tokens_per_minute.items() if b > 0}
        _hist_add(obs.all_client_requests.setdefault(c.tier, {}), c.per_minute)
        _hist_add(obs.all_client_tokens.setdefault(c.tier, {}), tokens)
        if segment.get(cid) == "heavy":
            continue
        _hist_add(obs.client_requests.setdefault(c.tier, {}), c.per_minute)
        _hist_add(obs.client_tokens.setdefault(c.tier, {}), tokens)
    return obs


def from_log(
    stats: LogStats,
    thresholds: segments.Thresholds | None = None,
    route_doc: dict[str, Any] | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """The report of an access log (``stats`` finished); raises ``ValueError`` on an invalid route."""
    bounds = stats.span()
    series = stats.series(bounds)
    if series is None:
        raise ValueError("the access log holds no requests")
    outside = stats.outside(bounds)
    lo, hi = bounds or (0, 0)
    profile = hourly.profile(series, stats.timezone)
    clients, segment = segments.summary(stats, thresholds or segments.Thresholds(), top)
    by_status = {k: t.requests for k, t in stats.totals("status").items()}
    status = {str(k): v for k, v in sorted(by_status.items(), key=lambda kv: str(kv[0]))}
    errors = sum(v for k, v in by_status.items() if is_error(k))
    return {
        "source": "access log",
        "first": stats.first if not outside else _minute(lo),
        "last": stats.last if not outside else _minute(hi),
        "days_spanned": round(stats.span_days() if not outside else (hi - lo) / 1440, 3),
        "requests": stats.requests,
        "tokens": {
            "input": sum(t.input_tokens for t in stats.breakdown.values()),
            "output": sum(t.output_tokens for t in stats.breakdown.values()),
            "requests_with_usage": sum(t.with_tokens for t in stats.breakdown.values()),
        },
        "profile": profile,
        "breakdowns": breakdowns(stats),
        "status": status,
        "error_rate": _share(errors, stats.requests),
        "ratelimited_rate": _share(by_status.get(429, 0.0), stats.requests),
        "cache": cache_summary(stats),
        "clients": clients,
        "recommendations": recommend(observed_from_log(stats, profile, segment), route_doc),
        "notes": _log_notes(stats, outside, lo, hi),
    }


MAX_SAMPLED = 0.01  # share of requests on sampled lines (left out of the replay) above which limits are
# priced per minute


def _requests(n: float) -> str:
    return f"{n:,.0f} request{'' if round(n) == 1 else 's'}"


def _minute(minute: int) -> str:
    """A UTC minute number as ``YYYY-MM-DDTHH:MMZ``."""
    return epoch_rfc3339(minute * 60)[:16] + "Z"


def _log_notes(stats: LogStats, outside: float, lo: int, hi: int) -> list[str]:
    notes = []
    if outside:
        notes.append(
            f"{_requests(outside)} dated more than {APART_MINUTES // 1440} days away from the log's main "
            f"stretch, {_minute(lo)} to {_minute(hi)} (its lines run from {stats.first} to {stats.last}): "
            "a clock set wrong? They are left out of the time-of-day picture, the peak and quiet hours "
            "and the schedules"
        )
    rates = stats.sample_rates
    if rates and rates[0] < 1:
        notes.append(
            f"the log is sampled (rates {', '.join(f'{r:g}' for r in rates)}): counts are scaled back up by "
            "1/rate, a client with few requests may be missing or undercounted, and a client's requests per "
            "minute move in steps of 1/rate, so per-client limits read from them are coarse; "
            + (
                f"the {_requests(stats.sampled)} on sampled lines are left out of the limits' replay"
                if stats.sampled <= MAX_SAMPLED * stats.requests
                else "the limits are counted per minute, not replayed"
            )
        )
    if stats.late:
        notes.append(
            f"{_requests(stats.late)} came more than {HORIZON} minutes out of time order for their "
            "client (logs concatenated?): their minutes may be split, so per-client peaks read low; give "
            "each pod's log as its own file to have them merged by time"
        )
    late = sum(r.late for (_, kind), r in stats.tier_refusals.items() if kind == "requests")
    if late:
        notes.append(
            f"{_requests(late)} arrived (their line's time minus their latency) more than {HORIZON} minutes "
            "before requests already replayed through the rate limiter (requests that long, or logs out of "
            "order): the limits' replayed shares leave them out, and a tier with more than "
            f"{MAX_LATE:.1%} of them is priced per minute"
        )
    notes.append(
        "hours without a line inside the log's span count as no traffic; a first or last hour the log "
        "covers only part of is left out"
    )
    return notes


def from_prometheus(
    usage: PromUsage, timezone: str, route_doc: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The report of a route's Prometheus history; raises ``ValueError`` on an invalid route."""
    profile = hourly.profile(usage.series, timezone)
    obs = ObservedUsage(profile, source="Prometheus history", unit="hourly peak")
    obs.per_minute_why = "Prometheus keeps rates, not each request's time"
    for tier, peaks in usage.tier_peak_minute.items():
        obs.tier_requests[tier] = {}
        for p in peaks:
            obs.tier_requests[tier][round(p)] = obs.tier_requests[tier].get(round(p), 0) + 1
    return {
        "source": "prometheus",
        **prom_summary(usage),
        "profile": profile,
        "recommendations": recommend(obs, route_doc),
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def render(report: dict[str, Any]) -> str:
    """The report as text: profile and heat maps, breakdowns, segments, cache, the commented patch."""
    p = report["profile"]
    lines = [f"source: {report['source']}; {report['requests']:,.0f} requests; hours are {p['timezone']}"]
    if report["source"] == "access log":
        lines.append(f"from {report['first']} to {report['last']} ({report['days_spanned']:.2f} days)")
    if report.get("input", {}).get("summary"):
        lines.append(f"input: {report['input']['summary']}")
    peak = ", ".join(f"{h:02d}:00" for h in p["peak_hours"])
    if len(p["peak_hours"]) == 24:
        peak = "none distinct (every hour is one)"
    lines.append(f"peak hours:  {peak}  ({p['peak_definition']})")
    lines.append(
        "quiet hours: " + ", ".join(f"{h:02d}:00" for h in p["quiet_hours"]) + f"  ({p['quiet_definition']})"
    )
    if p["peak_to_quiet_ratio"] is not None:
        lines.append(f"peak to quiet ratio: {p['peak_to_quiet_ratio']:.2f}")
    lines += hourly.render_heatmap(p["heatmap"]["requests"], "requests")
    lines += hourly.render_heatmap(p["heatmap"]["tokens"], "tokens")
    rates = f"error rate (5xx) {_pct(report['error_rate'])}, rate limited (429) "
    lines.append(rates + _pct(report["ratelimited_rate"]))
    for dim, table in report.get("breakdowns", {}).items():
        lines.append(f"by {dim}:")
        for name, row in list(table.items())[:12]:
            lines.append(
                f"  {name:<28} {row['requests']:>12,.0f} req {_pct(row['share']):>7}  "
                f"tokens {row['input_tokens']:>12,.0f} in {row['output_tokens']:>12,.0f} out  "
                f"errors {_pct(row['error_rate'])}  429 {_pct(row['ratelimited_rate'])}"
            )
    if "by_tier" in report:
        lines.append("by tier: " + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(report["by_tier"].items())))
    c = report["cache"]
    lines.append(
        f"cache: hit ratio {_pct(c['hit_ratio'])} ({c['hits']:,.0f} hits, {c['misses']:,.0f} misses)"
    )
    if c.get("upstream_tokens_saved") is not None:
        lines.append(f"  saved about {c['upstream_tokens_saved']:,.0f} upstream tokens")
    if c.get("latency_saved_ms_per_hit") is not None:
        lines.append(f"  and {c['latency_saved_ms_per_hit']:,.0f} ms per hit")
    lines += _clients(report["clients"])
    rec = report["recommendations"]
    lines += [f"note: {n}" for n in report.get("notes", [])]
    lines.append("recommended LLMRoute patch (JSON merge patch; reasoning per line):")
    lines.append(patchyaml.render(rec["patch"], rec["recommendations"]).rstrip())
    return "\n".join(lines)


def _clients(c: dict[str, Any]) -> list[str]:
    if not c.get("available"):
        return [f"clients: {c.get('note', 'no client ids in the log (accessLog.hashKeySecretRef not set?)')}"]
    t = c["thresholds"]
    lines = [
        f"clients: {c['clients']}; median {t['median_requests_per_active_day']:,.1f} requests per active day"
    ]
    for name in segments.SEGMENTS:
        s = c["segments"][name]
        lines.append(
            f"  {name:<10} {s['clients']:>6} clients  {_pct(s['requests_share']):>7} of requests  "
            f"{_pct(s['tokens_share']):>7} of tokens  errors {_pct(s['error_rate'])}  "
            f"429 {_pct(s['ratelimited_rate'])}   ({t[name]})"
        )
    if "note" in t:
        lines.append(f"  note: {t['note']}")
    anon = c["without_client_id"]
    if anon["requests"]:
        lines.append(f"  without a client id: {_pct(anon['requests_share'])} of requests")
    lines.append("top clients (pseudonymous ids):")
    for row in c["top_clients"]:
        lines.append(
            f"  {row['client']}  {row['segment']:<10} tier {row['tier']:<12} {row['requests']:>10,.0f} req "
            f"{_pct(row['requests_share']):>7}  {row['active_days']} active days  "
            f"peak {row['peak_requests_per_minute']:,.0f}/min  429 {_pct(row['ratelimited_rate'])}"
        )
    return lines
