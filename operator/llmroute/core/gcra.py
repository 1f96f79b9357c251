"""Generic cell rate algorithm (GCRA): the rate-limit arithmetic shared by the local and Redis limiters.

A per-minute limit is enforced as a steady rate (one unit every ``60/limit`` seconds) with a burst of one
second's worth (at least one unit) — the way OpenAI itself quantises per-minute limits. Each limiter's whole
state is one number, the theoretical arrival time (TAT), so it is O(1) in memory, exact over any window
longer than the burst, and trivially atomic as a Redis script. A limiter whose TAT is in the past is
indistinguishable from a new one, which makes eviction free.

Requests are *strict*: the unit must fit. Tokens are *debt-based*: a request is admitted while the limiter
is not in debt beyond the burst and then charged its whole estimate (so a request larger than the burst is
still admissible), corrected later from the response's usage.

What the ``x-ratelimit-*`` headers report is OpenAI's contract, not the burst: ``remaining`` is what is
left of the per-minute allowance (the limit minus the units still "in flight" in the limiter's debt) and
``reset`` the time until the allowance is whole again (the debt itself). A client may therefore see a 429
(too fast: more than a second's worth at once) with a non-zero ``remaining`` (allowance left this minute);
``Retry-After`` then says how soon the next request fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

BURST_SECONDS = 1.0
WINDOW_SECONDS = 60.0  # a limit is per minute
Kind = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """One limit a request must pass: ``key`` names the counter, ``limit`` is units per minute."""

    key: str
    limit: int
    cost: float
    kind: Kind

    @property
    def strict(self) -> bool:
        return self.kind == "requests"


@dataclass(frozen=True, slots=True)
class LimitStatus:
    """What the ``x-ratelimit-*`` headers report for one check."""

    limit: int
    remaining: int
    reset: float


def params(limit: int) -> tuple[float, float]:
    """(emission interval, burst tolerance) in seconds for a per-minute limit > 0."""
    interval = 60.0 / limit
    return interval, max(BURST_SECONDS, interval)


def evaluate(tat: float, now: float, check: LimitCheck) -> tuple[bool, float, float]:
    """(allowed, TAT if admitted, retry-after seconds if not)."""
    if check.limit <= 0:
        return False, tat, 60.0
    interval, tau = params(check.limit)
    base = max(tat, now)
    new_tat = base + check.cost * interval
    allow_at = (new_tat if check.strict else base) - tau
    if allow_at > now + 1e-9:
        return False, tat, allow_at - now
    return True, new_tat, 0.0


def status(check: LimitCheck, tat: float, now: float) -> LimitStatus:
    """The per-minute allowance left at ``now`` and the seconds until it is whole again."""
    if check.limit <= 0:
        return LimitStatus(0, 0, WINDOW_SECONDS)
    interval, _ = params(check.limit)
    debt = max(0.0, tat - now)
    remaining = max(0, math.floor((WINDOW_SECONDS - debt) / interval + 1e-9))
    return LimitStatus(check.limit, min(remaining, check.limit), debt)


def refuses(check: LimitCheck, debt: float) -> bool:
    """Whether ``check`` refuses a request while its limiter is ``debt`` seconds ahead of now."""
    if check.limit <= 0:
        return True
    interval, tau = params(check.limit)
    ahead = debt + check.cost * interval if check.strict else debt
    return ahead - tau > 1e-9


def tightest(checks: tuple[LimitCheck, ...], statuses: list[LimitStatus], kind: Kind) -> LimitStatus | None:
    best: LimitStatus | None = None
    for check, st in zip(checks, statuses, strict=True):
        if check.kind == kind and (best is None or st.remaining < best.remaining):
            best = st
    return best


def fmt_duration(seconds: float) -> str:
    """``seconds`` as OpenAI writes a reset: Go's ``time.Duration.String`` (``250ms``, ``1.5s``, ``6m0s``,
    ``1h2m3.5s``, ``0s``), rounded up to the millisecond (the allowance is whole by then, never before).

    Each field is carried before it is written, so no field reaches its next unit (``1m60s``)."""
    ms = math.ceil(seconds * 1000.0 - 1e-6) if seconds > 0 else 0  # 1e-6: 0.02 * 1000 is 20.000000000000004
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, frac = divmod(rest, 1000)
    text = f"{secs}.{frac:03d}".rstrip("0") + "s" if frac else f"{secs}s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text
