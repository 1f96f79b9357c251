"""Fold access-log records into bounded aggregates, one record at a time.

Memory grows with the number of hours, tiers, clients and distinct (tier, endpoint, model, stream, prompt
band) keys, never with the number of lines. Each line stands for ``1 / sample_rate`` requests. Per client
it keeps totals, the local days it was active on and a histogram of its requests (and tokens) per active
minute. A client's minutes stay open until it sends a record :data:`HORIZON` minutes later, so records
out of time order by less than that (pods' clocks, a concatenation of logs) count in their own minute; a
record further behind is counted as a minute of its own and in ``late`` (its minute may be split, and the
report says so). Each request is also replayed, at the time it arrived (its line's time minus its
latency), through the proxy's rate limiter at every priced limit, per client and per tier
(:mod:`llmroute.sim.pacing`), except a sampled line's (the times of the requests it stands for are not
known): the arrivals of the last :data:`HORIZON` minutes wait in memory to be put in time order, and a
client's limiters are forgotten once idle. Hours without a
line inside the log's span are zero traffic: a log has no other way to say so; a first or last hour the
log covers only part of is missing. Status classes: ``429`` is rate limited, ``5xx`` an error, ``499``
the client left first.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from llmroute.core.gcra import Kind
from llmroute.sim.hourly import HourlySeries
from llmroute.sim.pacing import Pacer, Refusals
from llmroute.spec.accesslog import MAX_COUNT, MIN_SAMPLE_RATE

PROMPT_BANDS = (256, 1024, 4096, 16384, 65536)  # input tokens: <256, 256-1k, 1k-4k, 4k-16k, 16k-64k, 64k+
BAND_NAMES = ("<256", "256-1k", "1k-4k", "4k-16k", "16k-64k", ">=64k")
HORIZON = 15  # minutes a client's minute stays open for records out of time order
APART_MINUTES = 31 * 24 * 60  # lines this far from all others are a stretch apart (LogStats.span)
SWEEP_MINUTES = 5  # how often (log time) the arrivals HORIZON behind are replayed through the limiters
SWEEP_LINES = 200_000  # ... or after this many lines (a log out of order gives no time to go by)


def band(tokens: Any) -> str:
    """The prompt-size band of ``tokens`` input tokens (``unknown`` when not reported)."""
    if not isinstance(tokens, int):
        return "unknown"
    return BAND_NAMES[bisect_right(PROMPT_BANDS, tokens)]


# the bands' bounds are powers of two: a count's bit length names its band (the hot path's lookup)
BAND_BY_BITS = [band((1 << bits) - 1) for bits in range(64)]


def token_bin(tokens: float) -> int:
    """Log-spaced bin of a token count (about 4 % wide above 64): exact below 64."""
    if tokens < 64:
        return round(tokens)
    return 64 + round(24 * math.log2(tokens / 64))


def bin_value(b: int) -> float:
    """The token count a :func:`token_bin` bin stands for."""
    return float(b) if b < 64 else 64 * 2 ** ((b - 64) / 24)


@dataclass(slots=True)
class ClientStats:
    """One pseudonymous client: weighted totals, active local days, per-minute histograms."""

    tier: str = "none"
    requests: float = 0.0
    tokens: float = 0.0
    errors: float = 0.0
    ratelimited: float = 0.0
    days: set[int] = field(default_factory=set)
    latest: int = -1  # the latest minute it sent a record in
    open: dict[int, list[float]] = field(default_factory=dict)  # minute -> [requests, tokens], not folded
    per_minute: dict[int, int] = field(default_factory=dict)  # requests in an active minute -> minutes
    tokens_per_minute: dict[int, int] = field(default_factory=dict)  # token_bin -> minutes
    peak_minute: float = 0.0

    def start(self, minute: int, requests: float, tokens: float) -> list[float] | None:
        """Open ``minute`` (its figures, to add to), folding the minutes :data:`HORIZON` before it; ``None``
        when ``minute`` was already folded: a late record, then folded as a minute of its own."""
        if minute <= self.latest - HORIZON:
            self._fold_one(requests, tokens)
            return None
        opened = self.open
        if minute > self.latest:
            self.latest = minute
            if opened and next(iter(opened)) < minute - HORIZON:  # the oldest one opened (in time order)
                if len(opened) == 1:  # a client's previous minute, the common case
                    self._fold_one(*opened.popitem()[1])
                else:
                    self.fold(minute - HORIZON)
        m = opened[minute] = [0.0, 0.0]
        return m

    def _fold_one(self, requests: float, tokens: float) -> None:
        n = round(requests)
        self.per_minute[n] = self.per_minute.get(n, 0) + 1
        b = token_bin(tokens)
        self.tokens_per_minute[b] = self.tokens_per_minute.get(b, 0) + 1
        if requests > self.peak_minute:
            self.peak_minute = requests

    def fold(self, before: int | None = None) -> None:
        """Close the open minutes before ``before`` (all of them when ``None``) into the histograms."""
        done = [k for k in self.open if before is None or k < before]
        for k in done:
            self._fold_one(*self.open.pop(k))


@dataclass(slots=True)
class Totals:
    """Weighted sums of one breakdown key."""

    requests: float = 0.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    with_tokens: float = 0.0  # requests whose usage was logged
    latency_ms: float = 0.0

    def merge(self, other: Totals) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.with_tokens += other.with_tokens
        self.latency_ms += other.latency_ms


Key = tuple[str, str, str, bool, str, Any, str]  # tier, endpoint, model, stream, prompt band, status, cache
KEY_FIELDS = ("tier", "endpoint", "model", "stream", "prompt_band", "status", "cache")


def is_error(status: Any) -> bool:
    return isinstance(status, int) and status >= 500


class LogStats:
    """The aggregates of a log, in the time zone ``timezone`` (days and hours are local).

    ``breakdown`` holds weighted totals by :data:`KEY_FIELDS`; status and cache counts, error and
    rate-limit rates are all read from it. ``tier_minutes`` holds each tier's requests and tokens per UTC
    minute number (the hourly series is folded from it).
    """

    def __init__(self, timezone: str = "UTC") -> None:
        self.timezone = timezone
        self._tz = ZoneInfo(timezone)
        self._slots: dict[str, tuple[int, int]] = {}
        self._weights: dict[Any, float] = {}
        self.breakdown: dict[Key, Totals] = {}
        self.clients: dict[str, ClientStats] = {}
        self.anonymous = ClientStats()  # requests without a client id
        self.tier_minutes: dict[tuple[str, int], list[float]] = {}  # (tier, minute) -> [requests, tokens]
        self.first: str | None = None
        self.last: str | None = None
        self.requests = 0.0
        self.days: set[int] = set()  # local day ordinals the log touches
        self.late = 0.0  # requests more than HORIZON minutes behind their client's latest
        # the proxy's limiters replayed (llmroute.sim.pacing): per tier, what each priced limit admits of
        # its clients' traffic (per-client limits) and of its traffic as a whole (tier limits)
        self.sampled = 0.0  # requests of sampled lines (left out of the replay: their times are not known)
        self.client_refusals: dict[tuple[str, Kind], Refusals] = {}  # (tier, kind)
        self.tier_refusals: dict[tuple[str, Kind], Refusals] = {}
        self._tier_pacers: dict[str, Pacer] = {}
        self._client_pacers: dict[tuple[str, str], Pacer] = {}  # by (tier, client id)
        self._waiting: list[Pacer] = []  # pacers with arrivals to replay
        self._swept = -SWEEP_MINUTES  # the minute arrivals were last replayed up to HORIZON before
        self._forgotten = 0  # the minute idle limiters were last forgotten
        self._unswept = 0  # lines paced since the last sweep

    def _slot(self, when: str) -> tuple[int, int]:
        """(UTC minute number, local day ordinal) of a ``YYYY-MM-DDTHH:MM`` prefix."""
        fields = (int(when[0:4]), int(when[5:7]), int(when[8:10]), int(when[11:13]), int(when[14:16]))
        utc = datetime(*fields, tzinfo=UTC)
        slot = (int(utc.timestamp()) // 60, utc.astimezone(self._tz).date().toordinal())
        self._slots[when] = slot
        self.days.add(slot[1])
        return slot

    def _weight(self, rate: Any) -> float:
        """``1 / rate`` (1 when not given); raises ``ValueError`` on a rate the contract does not allow."""
        w = self._weights.get(rate)
        if w is None:
            if rate is not None and (rate.__class__ not in (int, float) or not MIN_SAMPLE_RATE <= rate <= 1):
                raise ValueError("sample_rate")
            w = self._weights[rate] = 1.0 if rate is None else 1.0 / rate
        return w

    @property
    def sample_rates(self) -> list[float]:
        """The sampling rates the log's lines were written at."""
        return sorted(1.0 / w for w in self._weights.values())

    def add(self, r: dict[str, Any]) -> None:
        """Fold one record (a dict of the access-log fields, ``time`` in the canonical form the reader
        gives); raises ``ValueError`` or ``TypeError``, changing nothing, when a field does not have the
        contract's type (:func:`llmroute.spec.accesslog.problem` names it)."""
        g = r.get
        when: str = r["time"]
        minute, day = self._slots.get(when[:16]) or self._slot(when[:16])
        rate = g("sample_rate")
        w = self._weights.get(rate) or self._weight(rate)
        status, tin, tout = g("status"), g("input_tokens"), g("output_tokens")
        tier, endpoint, model, cache = g("tier"), g("endpoint"), g("model"), g("cache")
        cid = g("client")
        stream, latency = g("stream"), g("latency_ms")
        if not (
            (tin is None or (tin.__class__ is int and 0 <= tin < MAX_COUNT))
            and (tout is None or (tout.__class__ is int and 0 <= tout < MAX_COUNT))
            and (status is None or (status.__class__ is int and 100 <= status <= 599))
            and (tier is None or tier.__class__ is str)
            and (endpoint is None or endpoint.__class__ is str)
            and (model is None or model.__class__ is str)
            and (cache is None or cache.__class__ is str)
            and (cid is None or cid.__class__ is str)
            and (stream is None or stream.__class__ is bool)
            and (latency is None or (latency.__class__ in (int, float) and 0 <= latency < 1e15))
        ):
            raise ValueError("a field of another type than the contract's")
        tin, tout = tin or 0, tout or 0
        tokens = tin + tout
        tier = tier or "none"
        key = (tier, endpoint or "-", model or "-", stream is True,
               BAND_BY_BITS[tin.bit_length()] if tin else "unknown", status, cache or "bypass")  # fmt: skip
        latency = latency or 0.0
        second = float(when[17:23])
        if not 0 <= second < 60:
            raise ValueError("time: seconds out of range")
        t = self.breakdown.get(key)
        # nothing below raises: a bad record changes nothing
        if self.first is None or when < self.first:
            self.first = when
        if self.last is None or when > self.last:
            self.last = when
        self.requests += w
        if t is None:
            t = self.breakdown[key] = Totals()
        t.requests += w
        if tokens:
            t.input_tokens += tin * w
            t.output_tokens += tout * w
            t.with_tokens += w
        t.latency_ms += latency * w
        m = self.tier_minutes.get((tier, minute))
        if m is None:
            m = self.tier_minutes[tier, minute] = [0.0, 0.0]
        m[0] += w
        m[1] += tokens * w
        if w != 1.0:
            self.sampled += w  # its requests' times are not known: left out of the replay
        else:
            self._unswept += 1
            due = self._swept + SWEEP_MINUTES <= minute < self._swept + APART_MINUTES or self._swept < 0
            if due or self._unswept >= SWEEP_LINES:  # (a line dated far ahead does not sweep)
                self._sweep(minute)
            arrival = (minute * 60 + second - latency / 1000, tokens)  # when it was admitted
            p = self._tier_pacers.get(tier) or self._pacer(tier, None)
            if not p.pending:
                self._waiting.append(p)
            p.pending.append(arrival)
            if cid is not None:  # the proxy keys a client's limiter by its tier too
                p = self._client_pacers.get((tier, cid)) or self._pacer(tier, cid)
                if not p.pending:
                    self._waiting.append(p)
                p.pending.append(arrival)
        c = self.clients.get(cid) if cid is not None else self.anonymous
        if c is None:
            c = self.clients[str(cid)] = ClientStats()
        c.tier = tier
        c.requests += w
        c.tokens += tokens * w
        if status == 429:
            c.ratelimited += w
        elif is_error(status):
            c.errors += w
        c.days.add(day)
        m = c.open.get(minute)
        if m is None:
            m = c.start(minute, w, tokens * w)
            if m is None:
                self.late += w
                return
        m[0] += w
        m[1] += tokens * w

    def _pacer(self, tier: str, cid: str | None) -> Pacer:
        """A new pacer for ``cid`` (``None``: the tier as a whole) in ``tier``."""
        into = self.tier_refusals if cid is None else self.client_refusals
        if (tier, "requests") not in into:
            into[tier, "requests"], into[tier, "tokens"] = Refusals(strict=True), Refusals(strict=False)
        p = Pacer(into[tier, "requests"], into[tier, "tokens"])
        if cid is None:
            self._tier_pacers[tier] = p
        else:
            self._client_pacers[tier, cid] = p
        return p

    def _sweep(self, minute: int) -> None:
        """Replay the arrivals more than :data:`HORIZON` minutes before ``minute``; once an hour of log
        time, forget the clients' limiters idle since then (an idle limiter is a new one)."""
        self._swept, self._unswept = minute, 0
        cutoff = (minute - HORIZON) * 60.0
        waiting = []
        for p in self._waiting:
            p.flush(cutoff)
            if p.pending:
                waiting.append(p)
        self._waiting = waiting
        if abs(minute - self._forgotten) >= 60:  # either way: a line dated ahead must not stop it
            self._forgotten = minute
            pacers = self._client_pacers
            for key in [k for k, p in pacers.items() if not p.pending and p.idle_at() < cutoff]:
                del pacers[key]

    def finish(self) -> None:
        """Close every client's open minutes and replay every arrival left (call once, after the last
        record)."""
        for c in self.clients.values():
            c.fold()
        self.anonymous.fold()
        for p in (*self._tier_pacers.values(), *self._client_pacers.values()):
            p.flush()
        self._tier_pacers.clear()
        self._client_pacers.clear()
        self._waiting.clear()

    def span(self) -> tuple[int, int] | None:
        """(first, last) UTC minute number of the log's main stretch (``None`` for an empty log): its lines
        split where :data:`APART_MINUTES` pass without one, the stretch with the most requests. A line
        dated decades off (a clock reset to 1970, a sentinel year) would otherwise spread the hourly
        picture over every hour in between, read as hours without traffic."""
        minutes: dict[int, float] = {}
        for (_, minute), (r, _) in self.tier_minutes.items():
            minutes[minute] = minutes.get(minute, 0.0) + r
        if not minutes:
            return None
        order = sorted(minutes)
        best: tuple[float, int, int] | None = None
        start = 0
        for i in range(1, len(order) + 1):
            if i == len(order) or order[i] - order[i - 1] > APART_MINUTES:
                weight = sum(minutes[m] for m in order[start:i])
                if best is None or weight > best[0]:
                    best = (weight, order[start], order[i - 1])
                start = i
        assert best is not None
        return best[1], best[2]

    def outside(self, bounds: tuple[int, int] | None = None) -> float:
        """Requests dated outside the main stretch (``bounds``, by default :meth:`span`)."""
        bounds = bounds or self.span()
        if bounds is None:
            return 0.0
        lo, hi = bounds
        return sum(r for (_, minute), (r, _) in self.tier_minutes.items() if not lo <= minute <= hi)

    def series(self, bounds: tuple[int, int] | None = None) -> HourlySeries | None:
        """Hourly totals from the first to the last hour of the log's main stretch (:meth:`span`; ``None``
        for an empty log).

        The first hour is missing (NaN) unless the stretch starts in the hour's first minute, and the last
        hour unless it ends in the hour's last minute: the log covers only part of them, and part of an
        hour read as the whole of it would make a busy hour look quiet (a day of logs from 20:30 to 20:30
        holds two half hours of 20:00). ``bounds``: :meth:`span`, when the caller has it already."""
        bounds = bounds or self.span()
        if bounds is None:
            return None
        first_minute, last_minute = bounds
        first, last = first_minute // 60, last_minute // 60
        req = np.zeros(last - first + 1)
        tok = np.zeros(last - first + 1)
        for (_, minute), (r, t) in self.tier_minutes.items():
            if first_minute <= minute <= last_minute:
                req[minute // 60 - first] += r
                tok[minute // 60 - first] += t
        if first_minute % 60 != 0:
            req[0] = tok[0] = np.nan
        if last_minute % 60 != 59:
            req[-1] = tok[-1] = np.nan
        return HourlySeries(datetime.fromtimestamp(first * 3600, UTC), req, tok)

    def totals(self, field: str) -> dict[Any, Totals]:
        """The breakdown summed by one of :data:`KEY_FIELDS`."""
        index = KEY_FIELDS.index(field)
        out: dict[Any, Totals] = {}
        for key, t in self.breakdown.items():
            acc = out.get(key[index])
            if acc is None:
                acc = out[key[index]] = Totals()
            acc.merge(t)
        return out

    def span_days(self) -> float:
        """Days between the first and the last line."""
        if self.first is None or self.last is None:
            return 0.0
        a = datetime.fromisoformat(self.first.replace("Z", "+00:00"))
        b = datetime.fromisoformat(self.last.replace("Z", "+00:00"))
        return (b - a) / timedelta(days=1)

    def local_days(self) -> int:
        """Local calendar days the log touches."""
        return len(self.days)
