"""Recommendations from observed usage, as an LLMRoute patch with the reasoning for every value.

* ``rateLimits.schedules`` ``off-peak``: the longest run of quiet hours gets a multiplier of the peak to
  quiet ratio of hourly medians over the days (rounded down to a half, 1.5 to 4; 4 when the quiet hours
  carry nothing): the capacity sized for the peak is idle then, and batch work may use it. Peak hours run
  at the base limits (multiplier 1).
* per tier ``requestsPerMinute`` / ``tokensPerMinute``: 1.25 x the 99th percentile of the tier's
  route-wide requests (tokens) per active minute, then raised until it would have refused at most
  :data:`MAX_REFUSED` of the tier's traffic. A percentile is read from at least :data:`MIN_OBSERVATIONS`
  minutes (hourly peaks for Prometheus), else no limit.
* per tier ``perClient``: 1.5 x the 99th percentile of one non-heavy client's requests (tokens) per active
  minute, raised until it would have refused at most 1 % of the tier's requests (tokens) over all clients,
  heavy ones included: a guard against a runaway client, not a cap on the heavy clients the gateway
  serves today. The share it would have refused is printed.

"Would have refused" is priced the way the proxy enforces a limit, a steady rate with one second's burst
(:mod:`llmroute.core.gcra`): an access log's arrivals (each line's time minus its latency) are replayed
through that limiter at every limit of :data:`llmroute.sim.pacing.GRID`, per client or for the tier as
a whole, and the smallest limit whose refused share is within the target is taken (so limits are two
significant digits in steps of at most a third). A sampled log, or Prometheus, gives no time per request:
the share is then counted per minute, which a client bunching its requests inside a minute exceeds, and
the reasoning says so.
* ``scaling.schedules`` ``peak``: a ``minReplicas`` floor for the longest run of peak hours at the
  peak's typical load (the median over days) over ``scaling.metric.targetPerReplica`` (when the metric
  is requests per second), so the daily ramp starts warm; it is only suggested above
  ``proxy.minReplicas``.

The patch is a JSON merge patch (RFC 7386) on the route: lists are given whole, so the route's own tiers
and schedules are carried over (the recommendation changes only limits and adds or replaces the named
windows). :func:`merge_patch` applies it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from llmroute.core.gcra import Kind
from llmroute.core.hpa import count
from llmroute.sim.hourly import windows
from llmroute.sim.logstats import HORIZON
from llmroute.sim.pacing import GRID, Refusals, grid_up
from llmroute.spec.route import LLMRoute

TIER_HEADROOM = 1.25
CLIENT_HEADROOM = 1.5
MIN_OBSERVATIONS = 30  # minutes (hourly peaks) a percentile is read from, at the least
MAX_MULTIPLIER = 4.0  # the off-peak window's largest multiplier
MAX_REFUSED = 0.01  # a per-client limit may refuse at most this share of what the tier's clients sent
MAX_LATE = 0.001  # a tier's share of requests (tokens) out of order beyond the replay's horizon, at most
ENFORCED = (
    "the proxy enforces a per-minute limit as a steady rate with one second's burst (28/min: one request "
    "every 2.1 s), not as a count per minute"
)
Histogram = dict[int, int]  # value -> minutes


@dataclass
class ObservedUsage:
    """What the recommendations are made from; tier keys are tier names (``none``: a route without tiers).

    ``tier_minutes``: a tier's route-wide requests and tokens per active minute (histograms);
    ``client_minutes``: one non-heavy client's requests and tokens per active minute (histograms), and
    ``all_client_minutes`` every client's (to price a per-client limit).
    """

    profile: dict[str, Any]
    tier_requests: dict[str, Histogram] = field(default_factory=dict)
    tier_tokens: dict[str, Histogram] = field(default_factory=dict)
    client_requests: dict[str, Histogram] = field(default_factory=dict)
    client_tokens: dict[str, Histogram] = field(default_factory=dict)
    all_client_requests: dict[str, Histogram] = field(default_factory=dict)
    all_client_tokens: dict[str, Histogram] = field(default_factory=dict)
    source: str = "access log"
    unit: str = "minute"  # what one histogram observation is
    # the log's arrivals replayed through the proxy's limiter (llmroute.sim.pacing), by (tier, kind): for
    # per-client limits over the tier's clients, for tier limits over the tier as a whole
    client_paced: dict[tuple[str, Kind], Refusals] = field(default_factory=dict)
    tier_paced: dict[tuple[str, Kind], Refusals] = field(default_factory=dict)
    per_minute_why: str | None = None  # why limits are priced from counts per minute (not replayed)


def quantile(hist: Histogram, q: float) -> float | None:
    """The ``q`` quantile of a histogram (lower value at a tie), ``None`` when empty."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank, seen = q * total, 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return float(value)
    return float(max(hist))


def nice_up(value: float) -> int:
    """``value`` rounded up to two significant digits (at least 1)."""
    if value <= 1:
        return 1
    scale = 10 ** max(0, math.floor(math.log10(value)) - 1)
    return int(math.ceil(value / scale) * scale)


def refused_share(hist: Histogram, limit: float) -> float:
    """Share of the requests in ``hist`` (per-minute counts) a per-minute limit would have refused."""
    total = sum(v * n for v, n in hist.items())
    over = sum((v - limit) * n for v, n in hist.items() if v > limit)
    return over / total if total else 0.0


def guard_limit(hist: Histogram, start: int) -> int:
    """The smallest two-significant-digit limit from ``start`` up that refuses at most
    :data:`MAX_REFUSED` of ``hist`` (bisection: the refused share falls as the limit rises)."""
    lo, hi = start, nice_up(max(hist, default=start))
    while lo < hi:
        mid = (lo + hi) // 2
        if refused_share(hist, mid) > MAX_REFUSED:
            lo = mid + 1
        else:
            hi = mid
    return nice_up(lo)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: ``patch`` applied to ``target`` (neither is modified)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class _Builder:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, path: str, value: Any, reason: str) -> None:
        self.items.append({"path": path, "value": value, "reason": reason})


def _hhmm(hour: int) -> str:
    return f"{hour % 24:02d}:00"


def _short(prof: dict[str, Any]) -> str | None:
    """Why a daily window cannot be read from ``prof`` (less than a day of hours with data), or ``None``."""
    known = prof.get("hours", 0) - prof.get("missing_hours", 0)
    return None if known >= 24 else f"the data covers {known} hours, less than a day"


def _offpeak(obs: ObservedUsage, b: _Builder) -> dict[str, Any] | None:
    prof = obs.profile
    if (short := _short(prof)) is not None:
        b.add("spec.rateLimits.schedules[off-peak]", None, f"no off-peak window: {short}")
        return None
    ratio, quiet = prof.get("peak_to_quiet_ratio"), windows(prof.get("quiet_hours", []))
    idle = ratio is None and bool(prof.get("peak_hours")) and bool(quiet)  # quiet hours carry nothing
    if idle:
        ratio = MAX_MULTIPLIER
    if ratio is None or ratio < 1.5 or not quiet or (quiet[0][1] - quiet[0][0]) % 24 < 2:
        b.add("spec.rateLimits.schedules[off-peak]", None, "no off-peak window: the daily shape is too flat")
        return None
    start, end = quiet[0]
    mult = min(MAX_MULTIPLIER, max(1.5, math.floor(ratio * 2) / 2))
    load = (
        "the quiet hours have no traffic on a typical day"
        if idle
        else f"peak hours carry {ratio:.1f}x its load"
    )
    why = (
        f"{_hhmm(start)}-{_hhmm(end)} {prof['timezone']} is the longest run of quiet hours "
        f"({prof['quiet_definition']}); {load}, so limits can rise x{mult:g} then (peak hours keep the "
        "base limits)"
    )
    path = "spec.rateLimits.schedules[off-peak]"
    b.add(f"{path}.multiplier", mult, why)
    return {"name": "off-peak", "timezone": prof["timezone"], "start": _hhmm(start), "end": _hhmm(end),
            "multiplier": mult}  # fmt: skip


def _count(obs: ObservedUsage, hist: Histogram) -> str:
    n = sum(hist.values())
    return f"{n:,} {obs.unit}{'' if n == 1 else 's'}"


def _too_few(obs: ObservedUsage, hist: Histogram, path: str, what: str, b: _Builder) -> bool:
    """Whether ``hist`` has too few observations for a p99 (saying so in the recommendations)."""
    if sum(hist.values()) >= MIN_OBSERVATIONS:
        return False
    b.add(path, None, f"no limit: only {_count(obs, hist)} of the tier's {what} in the {obs.source} "
          f"(a p99 needs at least {MIN_OBSERVATIONS})")  # fmt: skip
    return True


def _priced(
    obs: ObservedUsage, paced: Refusals | None, start: float, hist: Histogram, guard: bool, what: str
) -> tuple[int, str]:
    """The limit from ``start`` (a headroom times a p99) and how it was priced: replayed through the
    proxy's limiter and raised until it refuses at most :data:`MAX_REFUSED` of ``what``, or (no replay, or
    no priced limit meets the target) from counts per minute, raised the same way when ``guard``."""
    per_minute_why = obs.per_minute_why
    if paced is not None and paced.late_share > MAX_LATE:
        per_minute_why = (
            f"{paced.late:,.0f} of {what} arrived more than {HORIZON} minutes out of time order "
            "(requests that long, or logs concatenated), so their order cannot be replayed; give each "
            "pod's log as its own file"
        )
        paced = None
    if paced is not None and paced.sent > 0:
        limit = paced.smallest(start, MAX_REFUSED)
        if limit is not None:
            floor = int(GRID[paced.lo])
            base = max(grid_up(start), floor)
            if limit > base:
                how = f", raised to refuse at most {MAX_REFUSED:.0%} of {what}"
            elif floor > grid_up(start):
                how = f", raised to {floor:,} (smaller limits of this kind are not priced)"
            elif limit > math.ceil(start):
                how = f", rounded up to {limit:,} (limits are priced in steps of at most a third)"
            else:
                how = ""
            return limit, (
                f"{how}; replayed through the proxy's limiter (a steady rate with one second's burst, "
                f"route-wide) at the {obs.source}'s arrival times, it would have refused "
                f"{paced.share(limit):.2%} of {what}"
                + ("" if paced.strict else f" ({paced.count_share(limit):.2%} of the requests carrying them)")
            )
        per_minute_why = (
            f"no limit up to {GRID[-1]:,.0f} a minute refuses at most {MAX_REFUSED:.0%} when replayed"
        )
    limit = nice_up(start)
    how = ""
    if guard and refused_share(hist, limit) > MAX_REFUSED:
        limit = guard_limit(hist, limit)
        how = f", raised to refuse at most {MAX_REFUSED:.0%} of {what}"
    said = f" ({per_minute_why})" if per_minute_why else ""
    share = f"would have refused {refused_share(hist, limit):.2%} of {what} " if guard else ""
    return limit, (
        f"{how}; {share}counted per minute{said}, more where traffic bunches inside a minute: {ENFORCED}"
    )


def _tier_limits(obs: ObservedUsage, name: str, tier: dict[str, Any], b: _Builder) -> dict[str, Any]:
    path = f"spec.rateLimits.tiers[{name}]"
    out = dict(tier)
    kinds: tuple[Kind, Kind] = ("requests", "tokens")
    for key, hists, kind in (("requestsPerMinute", obs.tier_requests, kinds[0]),
                             ("tokensPerMinute", obs.tier_tokens, kinds[1])):  # fmt: skip
        p99 = quantile(hists.get(name, {}), 0.99)
        if p99 is None or p99 <= 0 or _too_few(obs, hists.get(name, {}), f"{path}.{key}", kind, b):
            continue
        paced = obs.tier_paced.get((name, kind))
        limit, how = _priced(obs, paced, TIER_HEADROOM * p99, hists[name], False, f"the tier's {kind}")
        out[key] = limit
        why = (
            f"{TIER_HEADROOM:g} x p99 of the tier's {kind} per minute ({p99:,.0f}) over "
            f"{_count(obs, hists[name])} in the {obs.source}, route-wide (the operator divides it per "
            f"replica){how}"
        )
        b.add(f"{path}.{key}", limit, why)
    per_client = dict(out.get("perClient") or {})
    for key, hists, everyone, kind in (
        ("requestsPerMinute", obs.client_requests, obs.all_client_requests, kinds[0]),
        ("tokensPerMinute", obs.client_tokens, obs.all_client_tokens, kinds[1]),
    ):
        p99 = quantile(hists.get(name, {}), 0.99)
        where = f"{path}.perClient.{key}"
        if p99 is None or p99 <= 0 or _too_few(obs, hists.get(name, {}), where, f"clients' {kind}", b):
            continue
        spread = everyone.get(name, {})
        paced = obs.client_paced.get((name, kind))
        limit, how = _priced(obs, paced, CLIENT_HEADROOM * p99, spread, True, f"the tier's {kind}")
        per_client[key] = limit
        why = (
            f"{CLIENT_HEADROOM:g} x p99 of one non-heavy client's {kind} per active minute ({p99:,.0f}), "
            f"priced over all the tier's clients' {kind} (heavy ones too){how}"
        )
        b.add(where, limit, why)
    if per_client:
        out["perClient"] = per_client
    return out


def _scaling(obs: ObservedUsage, route: LLMRoute | None, timezone: str, b: _Builder) -> dict[str, Any] | None:
    spec = route.spec if route is not None else None
    metric = spec.scaling.metric if spec else None
    target = metric.target_per_replica if metric else 40.0
    floor = spec.proxy.min_replicas if spec else 1
    ceiling = spec.proxy.max_replicas if spec else 10
    prof, path = obs.profile, "spec.scaling.schedules[peak]"
    if (short := _short(prof)) is not None:
        b.add(path, None, f"no peak floor: {short}")
        return None
    peak = windows(prof.get("peak_hours", []))
    if metric is not None and metric.type != "RequestsPerSecond":
        b.add(path, None, f"no peak floor: the scaling metric is {metric.type}, the log counts requests")
        return None
    if not peak or peak[0] == (0, 0):
        b.add(path, None, "no peak floor: no distinct peak hours")
        return None
    start, end = peak[0]
    hours = [h % 24 for h in range(start, start + (end - start) % 24)]
    typical = prof.get("hourly_median_requests") or prof["hourly_mean_requests"]
    rps = sum(typical[h] for h in hours) / len(hours) / 3600
    replicas = min(ceiling, count(rps / target))
    if replicas <= floor:
        b.add(path, None, f"no peak floor: the peak's {rps:,.1f} req/s fit in proxy.minReplicas ({floor}) "
              f"at {target:g} req/s per replica")  # fmt: skip
        return None
    why = (
        f"{_hhmm(start)}-{_hhmm(end)} {timezone} carries {rps:,.1f} req/s on a typical day (median over the "
        f"days) = {replicas} replicas at "
        f"targetPerReplica {target:g}: start the daily ramp warm"
    )
    b.add(f"{path}.minReplicas", replicas, why)
    return {"name": "peak", "timezone": timezone, "start": _hhmm(start), "end": _hhmm(end),
            "minReplicas": replicas}  # fmt: skip


def recommend(obs: ObservedUsage, route_doc: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"patch": merge patch, "recommendations": [{"path", "value", "reason"}], "route": name}``.

    ``route_doc`` is the route as its manifest says (optional); raises ``ValueError`` when it is not a
    valid LLMRoute. A recommendation with value ``None`` says why nothing is suggested there.
    """
    route = LLMRoute.from_object(route_doc) if route_doc is not None else None
    wire: dict[str, Any] = (route_doc or {}).get("spec") or {}
    b = _Builder()
    timezone = obs.profile["timezone"]
    rate_limits: dict[str, Any] = {}
    offpeak = _offpeak(obs, b)
    if offpeak is not None:
        kept = [s for s in (wire.get("rateLimits") or {}).get("schedules", []) if s.get("name") != "off-peak"]
        rate_limits["schedules"] = [*kept, offpeak]
    known = {t["name"]: t for t in (wire.get("rateLimits") or {}).get("tiers", [])}
    observed = sorted(set(obs.tier_requests) - {"none"})
    names = list(known) if route is not None else observed
    tiers = [_tier_limits(obs, name, known.get(name, {"name": name}), b) for name in names]
    if route is not None:
        for name in sorted(set(observed) - set(known)):
            b.add(f"spec.rateLimits.tiers[{name}]", None, "seen in the log but not a tier of the route")
    if any(t != known.get(t["name"], {"name": t["name"]}) for t in tiers):
        rate_limits["tiers"] = tiers
    if "none" in obs.tier_requests and not names:
        b.add("spec.rateLimits.tiers", None, "the route has no tiers: per-tier and per-client limits need "
              "client identities (rateLimits.tiers with apiKeysSecretRef)")  # fmt: skip
    spec: dict[str, Any] = {}
    if rate_limits:
        spec["rateLimits"] = rate_limits
    peak = _scaling(obs, route, timezone, b)
    if peak is not None:
        kept = [s for s in (wire.get("scaling") or {}).get("schedules", []) if s.get("name") != "peak"]
        spec["scaling"] = {"schedules": [*kept, peak]}
    patch: dict[str, Any] = {"apiVersion": "llmroute.io/v1alpha1", "kind": "LLMRoute"}
    if route is not None:
        patch["metadata"] = {"name": route.metadata.name, "namespace": route.metadata.namespace}
    patch["spec"] = spec
    if route_doc is not None:
        LLMRoute.from_object(merge_patch(route_doc, patch))  # the patched route must stay valid
    return {"patch": patch, "recommendations": b.items, "route": route.metadata.name if route else None}
