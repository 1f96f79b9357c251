"""Local rate limiting: per-tier and per-client GCRA limiters held in this replica's memory.

:func:`build_checks` turns an identity and a token estimate into the checks a request must pass, with
either the per-replica share (local mode) or the global figures (shared-store mode).
:class:`LocalLimiter` evaluates them all-or-nothing, can later correct the token charge, and carries its
limiters over to changed limits (:meth:`LocalLimiter.rescale`, on every config that changes a share).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from llmroute.core.gcra import (
    WINDOW_SECONDS,
    LimitCheck,
    LimitStatus,
    evaluate,
    fmt_duration,
    params,
    refuses,
    status,
    tightest,
)
from llmroute.spec.proxyconfig import TierConfig

MAX_ENTRIES = 200_000
LimitKind = tuple[str, str, str]
"""What a check key limits: (``t`` tier | ``c`` client, tier name, ``r`` requests | ``t`` tokens)."""


@dataclass(slots=True)
class Verdict:
    allowed: bool
    retry_after: float
    checks: tuple[LimitCheck, ...]
    statuses: list[LimitStatus] = field(default_factory=list)
    shared: bool = False
    tats: tuple[float, ...] = ()  # admitted: each check's TAT after it (the local or the store's clock)

    def denied_kind(self) -> str:
        """Which kind of limit refused the request (``requests`` before ``tokens``)."""
        refusing = {c.kind for c, st in zip(self.checks, self.statuses, strict=False) if refuses(c, st.reset)}
        if refusing:
            return "requests" if "requests" in refusing else "tokens"
        return "tokens" if any(c.kind == "tokens" for c in self.checks) else "requests"

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for kind in ("requests", "tokens"):
            st = tightest(self.checks, self.statuses, kind) if self.statuses else None
            if st is not None:
                out[f"x-ratelimit-limit-{kind}"] = str(st.limit)
                out[f"x-ratelimit-remaining-{kind}"] = str(st.remaining)
                out[f"x-ratelimit-reset-{kind}"] = fmt_duration(st.reset)
        if not self.allowed:
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
            out["retry-after-ms"] = str(max(1, math.ceil(self.retry_after * 1000)))
        return out


ALLOW_ALL = Verdict(True, 0.0, ())


def _global(value: int | None, share: int | None, divisor: int) -> int | None:
    if value is not None:
        return value
    return None if share is None else share * max(1, divisor)


def build_checks(
    tier: TierConfig, client: bytes | None, tokens: float, shared: bool, divisor: int
) -> tuple[LimitCheck, ...]:
    """The checks for one request; ``shared`` selects the global figures (Redis) over the local share."""
    if shared:
        rpm = _global(tier.global_requests_per_minute, tier.requests_per_minute, divisor)
        tpm = _global(tier.global_tokens_per_minute, tier.tokens_per_minute, divisor)
        crpm = _global(tier.global_client_requests_per_minute, tier.client_requests_per_minute, divisor)
        ctpm = _global(tier.global_client_tokens_per_minute, tier.client_tokens_per_minute, divisor)
    else:
        rpm, tpm = tier.requests_per_minute, tier.tokens_per_minute
        crpm, ctpm = tier.client_requests_per_minute, tier.client_tokens_per_minute
    checks: list[LimitCheck] = []
    name = tier.name
    if rpm is not None:
        checks.append(LimitCheck(f"t|{name}|r", rpm, 1.0, "requests"))
    if tpm is not None:
        checks.append(LimitCheck(f"t|{name}|t", tpm, tokens, "tokens"))
    if client is not None and (crpm is not None or ctpm is not None):
        cid = client.hex()[:32]
        if crpm is not None:
            checks.append(LimitCheck(f"c|{name}|{cid}|r", crpm, 1.0, "requests"))
        if ctpm is not None:
            checks.append(LimitCheck(f"c|{name}|{cid}|t", ctpm, tokens, "tokens"))
    return tuple(checks)


def local_limits(tiers: Iterable[TierConfig]) -> dict[LimitKind, int]:
    """The per-replica limit behind each kind of local check key (unlimited kinds are absent)."""
    out: dict[LimitKind, int] = {}
    for tier in tiers:
        for kind, value in (
            (("t", tier.name, "r"), tier.requests_per_minute),
            (("t", tier.name, "t"), tier.tokens_per_minute),
            (("c", tier.name, "r"), tier.client_requests_per_minute),
            (("c", tier.name, "t"), tier.client_tokens_per_minute),
        ):
            if value is not None:
                out[kind] = value
    return out


def limit_kind(key: str) -> LimitKind:
    """What the check key ``key`` (made by :func:`build_checks`) limits."""
    scope, kind, middle = key[:1], key[-1:], key[2:-2]
    return scope, middle if scope == "t" else middle.rpartition("|")[0], kind


class LocalLimiter:
    """All GCRA states of this replica, keyed by check key."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._tat: dict[str, float] = {}
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._tat)

    def admit(self, checks: tuple[LimitCheck, ...], now: float) -> Verdict:
        if not checks:
            return ALLOW_ALL
        tats = self._tat
        new: list[float] = []
        retry = 0.0
        for check in checks:
            ok, tat, wait = evaluate(tats.get(check.key, 0.0), now, check)
            new.append(tat)
            if not ok:
                retry = max(retry, wait)
        if retry > 0.0:
            current = [tats.get(c.key, 0.0) for c in checks]
            return Verdict(
                False, retry, checks, [status(c, t, now) for c, t in zip(checks, current, strict=True)]
            )
        for check, tat in zip(checks, new, strict=True):
            tats[check.key] = tat
        if len(tats) > self._max:
            self._evict(now)
        statuses = [status(c, t, now) for c, t in zip(checks, new, strict=True)]
        return Verdict(True, 0.0, checks, statuses, tats=tuple(new))

    def correct(
        self,
        checks: tuple[LimitCheck, ...],
        delta_tokens: float,
        now: float,
        delta_requests: float = 0.0,
        admitted: Sequence[float] = (),
    ) -> None:
        """Charge (or refund, if negative) ``delta_tokens`` on the token checks and ``delta_requests`` on
        the request checks, as of their admission: a charge moves the TAT on from where it is (or from
        ``admitted``, the TAT the admission left, for a limiter dropped meanwhile with its debt paid: the
        least it can have been since), never behind ``now``."""
        for i, check in enumerate(checks):
            delta = delta_tokens if check.kind == "tokens" else delta_requests
            if delta == 0 or check.limit <= 0:
                continue
            tat = self._tat.get(check.key)
            if tat is None:
                if delta < 0 or i >= len(admitted):
                    continue
                tat = admitted[i]
            interval, _ = params(check.limit)
            moved = max(now, tat + delta * interval)
            if moved > now or check.key in self._tat:
                self._tat[check.key] = moved

    def debt(self, key: str, now: float) -> float:
        """Seconds the limiter of ``key`` is ahead of ``now`` (0: its whole allowance is free)."""
        return max(0.0, self._tat.get(key, 0.0) - now)

    def rescale(self, old: Mapping[LimitKind, int], new: Mapping[LimitKind, int], now: float) -> None:
        """Carry every limiter over from the limits ``old`` to ``new`` (both from :func:`local_limits`).

        A limiter's state is its debt in seconds of its limit's rate, so kept as it is a debt run up under
        10 tokens/min would hold a client for a minute after its limit was raised to 100,000. Instead what
        a limiter has admitted counts as the same number of units under the new limit: a raised limit
        frees the client at once as far as the new rate allows, a lowered one charges what was used
        under the old one, but never holds it more than a window (a minute, or the debt it already had)
        from ``now``: the old limit allowed that use. A limit removed, lowered to 0 or raised from 0, and
        every limit of a removed tier, starts afresh. Limiters whose debt is paid are dropped."""
        for key, tat in list(self._tat.items()):
            if tat <= now:
                del self._tat[key]
                continue
            kind = limit_kind(key)
            before, after = old.get(kind), new.get(kind)
            if before == after:
                continue
            if before is None or after is None or before <= 0 or after <= 0:
                del self._tat[key]
                continue
            debt = tat - now
            moved = debt * before / after
            if after < before:
                moved = min(moved, max(debt, WINDOW_SECONDS))
            self._tat[key] = now + moved

    def _evict(self, now: float) -> None:
        stale = [k for k, t in self._tat.items() if t <= now]
        for key in stale:
            del self._tat[key]
        if len(self._tat) > self._max:  # pathological key churn: forget the oldest half
            for key in list(self._tat)[: len(self._tat) // 2]:
                del self._tat[key]
