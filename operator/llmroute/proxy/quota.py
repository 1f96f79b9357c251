"""A hosted API's remaining rate-limit quota, from the headers of its answers (OpenAI, Azure OpenAI).

Headers read (case-insensitive), for ``requests`` and ``tokens`` alike:
``x-ratelimit-limit-*`` (the limit), ``x-ratelimit-remaining-*`` (what is left) and ``x-ratelimit-reset-*``
(time until the limit is back to its initial state). OpenAI writes the reset as a Go duration (``1s``,
``6m0s``, ``20ms``, ``1h2m3.5s``, parsed by ``durationpy``); Azure OpenAI as plain seconds (``60``) and may
leave the limit out or send ``-1`` for "not reported" (ignored). After a 429 the upstream cools down for
``retry-after-ms`` (Azure), else ``Retry-After`` (seconds or an HTTP date), else the reset of the exhausted
limit, else one second.

:class:`QuotaState` remembers the latest reading of one upstream and estimates its headroom at any later
``now``: the remaining quota refills linearly towards the limit over the reset time (a token bucket, as the
providers describe their limits), less what this proxy has sent since that reading (the upstream has
counted those, but no answer has told us yet). Without a limit header the largest remaining figure seen
stands in for the limit.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import durationpy

Dimension = Literal["requests", "tokens"]
DIMENSIONS: tuple[Dimension, ...] = ("requests", "tokens")
DEFAULT_COOLDOWN = 1.0  # seconds after a 429 that names no time at all
STALE_AFTER_SECONDS = 60.0  # a reading this long past its reset (or its time, without one) is forgotten
MAX_COOLDOWN = 3600.0


def parse_duration(value: str | None) -> float | None:
    """Seconds in a reset header: a Go duration (``6m0s``, ``20ms``) or plain seconds (``60``, ``0.5``);
    ``None`` if absent, negative or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = durationpy.from_str(text).total_seconds()
        except Exception:  # durationpy raises a bare Exception on malformed text
            return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def retry_after(headers: Mapping[str, str], wall_now: float) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (delay-seconds or an HTTP date, RFC 9110
    section 10.2.3; ``wall_now`` is the Unix time to measure a date from); ``None`` if neither is usable."""
    ms = _number(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - wall_now)


@dataclass(frozen=True, slots=True)
class Limit:
    """One dimension of a reading: ``remaining`` and ``limit`` (requests or tokens; ``None``: not sent)
    and ``reset`` (seconds until the limit is back to its initial state)."""

    remaining: float | None
    limit: float | None
    reset: float | None


def read_limits(headers: Mapping[str, str]) -> dict[Dimension, Limit]:
    """The dimensions ``headers`` report a remaining figure for (an empty dict: not a rate-limited API)."""
    found: dict[Dimension, Limit] = {}
    for dim in DIMENSIONS:
        remaining = _number(headers.get(f"x-ratelimit-remaining-{dim}"))
        if remaining is None:
            continue
        limit = _number(headers.get(f"x-ratelimit-limit-{dim}"))
        reset = parse_duration(headers.get(f"x-ratelimit-reset-{dim}"))
        found[dim] = Limit(remaining, limit if limit else None, reset)
    return found


@dataclass(slots=True)
class _Reading:
    remaining: float
    limit: float
    reset: float | None
    at: float
    pending: float = 0.0  # sent since the reading


@dataclass(slots=True)
class QuotaState:
    """What one upstream's answers said about its quota, and when it may be used again after a 429."""

    buckets: dict[Dimension, _Reading] = field(default_factory=dict)
    largest: dict[Dimension, float] = field(default_factory=dict)  # stands in for a limit not sent
    cooldown_until: float = 0.0

    def observe(self, status: int, headers: Mapping[str, str], now: float, wall_now: float) -> None:
        """Take in one answer's ``status`` and ``headers`` received at ``now`` (monotonic seconds)."""
        limits = read_limits(headers)
        for dim, reading in limits.items():
            assert reading.remaining is not None
            largest = self.largest[dim] = max(self.largest.get(dim, 0.0), reading.remaining)
            limit = reading.limit or largest
            if limit > 0:
                self.buckets[dim] = _Reading(min(reading.remaining, limit), limit, reading.reset, now)
        if status == 429:
            wait = retry_after(headers, wall_now)
            if wait is None:
                exhausted = [r.reset for r in limits.values() if r.remaining == 0 and r.reset is not None]
                wait = max(exhausted) if exhausted else DEFAULT_COOLDOWN
            self.cooldown_until = max(self.cooldown_until, now + min(wait, MAX_COOLDOWN))

    def dispatched(self, tokens: float) -> None:
        """Count one request of about ``tokens`` tokens sent since the latest reading."""
        for dim, bucket in self.buckets.items():
            bucket.pending += 1.0 if dim == "requests" else tokens

    def cooling(self, now: float) -> bool:
        return now < self.cooldown_until

    def headroom(self, now: float) -> float | None:
        """The smaller of the remaining-over-limit ratios at ``now`` (0..1), ``None`` if not reported.

        A reading older than its reset time plus :data:`STALE_AFTER_SECONDS` is forgotten: the upstream
        stopped sending the headers, and the requests counted since (``pending``) would otherwise grow
        without bound and hold its headroom at 0 for good."""
        stale = [d for d, b in self.buckets.items() if now - b.at > (b.reset or 0.0) + STALE_AFTER_SECONDS]
        for dim in stale:
            del self.buckets[dim]
        ratios = [_estimate(b, now) / b.limit for b in self.buckets.values()]
        return max(0.0, min(ratios)) if ratios else None


def _estimate(bucket: _Reading, now: float) -> float:
    remaining = bucket.remaining
    if bucket.reset is not None:
        refill = 1.0 if bucket.reset <= 0 else min(1.0, max(0.0, now - bucket.at) / bucket.reset)
        remaining += (bucket.limit - remaining) * refill
    return min(bucket.limit, remaining) - bucket.pending
