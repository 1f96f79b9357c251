"""This replica's rate limiting: the shared store's verdict while it answers, the local share otherwise.

:class:`RateLimiter` owns the :class:`LocalLimiter` (always there) and the :class:`SharedLimiter` (only
while the config names a Redis store for a route with tiers). :meth:`RateLimiter.admit` decides a request
all-or-nothing; :meth:`RateLimiter.correct` later charges or refunds tokens (and gives back the request
itself) once the request has settled
(in the background for the shared store, so the answer is not held up by Redis). A config that changes
the per-replica shares carries the local limiters over to them (:meth:`LocalLimiter.rescale`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from llmroute.core.gcra import LimitCheck
from llmroute.proxy.identity import Caller
from llmroute.proxy.limits import (
    ALLOW_ALL,
    LimitKind,
    LocalLimiter,
    Verdict,
    build_checks,
    limit_kind,
    local_limits,
)
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.snapshot import ConfigSnapshot
from llmroute.proxy.store import SharedLimiter


class RateLimiter:
    """Per-tier and per-client limits of one replica; ``metrics`` receives the shared store's state."""

    def __init__(self, metrics: ProxyMetrics) -> None:
        self.local = LocalLimiter()
        self.shared: SharedLimiter | None = None
        self._limits: dict[LimitKind, int] | None = None  # the local shares the limiters were run under
        self._metrics = metrics
        self._tasks: set[asyncio.Task[None]] = set()  # references kept until background work ends

    async def admit(self, snap: ConfigSnapshot, caller: Caller, tokens: int, now: float) -> Verdict:
        """Charge one request and ``tokens`` (estimated) to the caller's limits, or refuse it.

        The limits are those of the caller's tier in ``snap``; ``now`` is monotonic seconds. A caller
        without a tier is not limited."""
        tier = caller.tier
        if tier is None:
            return ALLOW_ALL
        divisor = snap.config.limits.divisor
        shared = self.shared
        if shared is not None and shared.available(now):
            deciding = asyncio.ensure_future(
                shared.admit(build_checks(tier, caller.client, tokens, True, divisor), now)
            )
            try:
                verdict = await asyncio.shield(deciding)
            except asyncio.CancelledError:
                # the caller left while the store decided: whatever it charged is given back once it lands
                deciding.add_done_callback(lambda done: self._give_back(done, tokens))
                raise
            if verdict is not None:
                return verdict
        return self.local.admit(build_checks(tier, caller.client, tokens, False, divisor), now)

    def _give_back(self, done: asyncio.Future[Verdict | None], tokens: int) -> None:
        """Refund the request and ``tokens`` a shared admission charged for a caller that has left."""
        if done.cancelled() or done.exception() is not None:
            return
        verdict = done.result()
        if verdict is not None and verdict.allowed:
            self.correct(verdict, -tokens, -1.0)

    def correct(self, verdict: Verdict, delta: float, requests: float = 0.0) -> None:
        """Charge (or refund, if negative) ``delta`` tokens and ``requests`` requests on the limits that
        admitted ``verdict``, at the rate they count in now (a reload may have changed it since)."""
        if not verdict.checks or (delta == 0 and requests == 0):
            return
        now = time.monotonic()
        shared = self.shared
        if verdict.shared and shared is not None:
            self._background(shared.correct(verdict.checks, delta, now, requests, verdict.tats))
        else:  # the store's TATs are on its clock, not this one
            checks, admitted = self._current(verdict.checks, () if verdict.shared else verdict.tats)
            self.local.correct(checks, delta, now, requests, admitted)

    def _current(
        self, checks: tuple[LimitCheck, ...], tats: tuple[float, ...]
    ) -> tuple[tuple[LimitCheck, ...], list[float]]:
        """``checks`` with the local limits now in force, and the TATs their admission left: their
        limiters were carried over to those limits (:meth:`LocalLimiter.rescale`), and a charge counted at
        an earlier limit's rate would be off by the ratio of the two. A check whose limit is gone
        (removed, or its tier) is left out: its limiter started afresh."""
        if self._limits is None:
            return checks, list(tats)
        out: list[LimitCheck] = []
        admitted: list[float] = []
        for i, check in enumerate(checks):
            limit = self._limits.get(limit_kind(check.key))
            if limit is None:
                continue
            out.append(check if limit == check.limit else replace(check, limit=limit))
            if i < len(tats):
                admitted.append(tats[i])
        return tuple(out), admitted

    def configure(self, snap: ConfigSnapshot) -> None:
        """Carry the local limiters over to ``snap``'s shares if they changed; open, keep or close the
        shared store client as ``snap`` asks (an old one closes in background)."""
        limits = local_limits(snap.config.limits.tiers)
        if self._limits is not None and limits != self._limits:
            self.local.rescale(self._limits, limits, time.monotonic())
        self._limits = limits
        store = snap.config.limits.store
        wanted = store.url if store.type == "Redis" and snap.config.limits.tiers else None
        current = self.shared
        if current is not None and (
            wanted is None or (current.url, current.password) != (wanted, snap.store_password)
        ):
            self._background(current.close())
            self.shared = None
        if wanted is not None and self.shared is None:
            self.shared = self._open(wanted, snap)

    def _open(self, url: str, snap: ConfigSnapshot) -> SharedLimiter:
        m = self._metrics
        fallback = m.child(m.store_fallback, snap.route)
        errors_total = m.child(m.store_errors, snap.route)

        def on_state(down: bool) -> None:
            fallback.set(1 if down else 0)
            if down:
                errors_total.inc()

        shared = SharedLimiter(url, snap.store_password, snap.route, on_state)
        fallback.set(0)
        return shared

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()
