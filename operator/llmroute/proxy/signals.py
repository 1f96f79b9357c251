"""Per-upstream load signals the ResourceAware strategy scores: engine readings and hosted quotas.

:class:`UpstreamSignals` keeps, per upstream name, the latest engine reading (from the scraper, see
:mod:`llmroute.proxy.scrape`) with the time it arrived and this proxy's in-flight count at that moment,
the engine's learned capacity, and the :class:`~llmroute.proxy.quota.QuotaState` built from the
upstream's answers. Times are the event loop's monotonic clock; every method takes ``now`` explicitly.

A reading older than ``stale_after`` seconds is not used: that upstream is scored on the proxy's own
in-flight count (least connections) until a fresh one arrives. Engine load "now" is the reading's
running + waiting corrected by what this proxy has sent or finished since (a scrape is up to an interval
old, and a burst fills an engine within it).

Capacity (concurrent requests the engine holds before it queues) is learned from readings with work in
progress: ``running / kv_cache_usage`` (how many of the current requests the whole cache holds), capped
by ``running`` while requests wait (the batch is full); an exponentially weighted mean of those.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmroute.proxy.engines import EngineLoad
from llmroute.proxy.quota import QuotaState

CAPACITY_ALPHA = 0.3
MIN_KV_FOR_CAPACITY = 0.02  # below this the ratio running / usage is mostly rounding


@dataclass(slots=True)
class EngineSignal:
    """The latest reading of one engine and what this proxy knew when it arrived."""

    load: EngineLoad | None = None
    at: float = -1e18
    inflight_at: int = 0
    capacity: float | None = None
    failures: int = 0  # scrapes failed in a row


def observed_capacity(load: EngineLoad) -> float | None:
    """The capacity one reading implies (``None``: it does not tell)."""
    running, waiting, kv = load.running, load.waiting, load.kv_cache_usage
    if not running or running <= 0:
        return None
    capacity = running / kv if kv is not None and kv >= MIN_KV_FOR_CAPACITY else None
    if waiting is not None and waiting > 0:
        capacity = running if capacity is None else min(capacity, running)
    return capacity


@dataclass(slots=True)
class UpstreamSignals:
    """Engine readings and quota states by upstream name."""

    stale_after: float = 3.0
    engines: dict[str, EngineSignal] = field(default_factory=dict)
    quotas: dict[str, QuotaState] = field(default_factory=dict)

    def sync(self, names: set[str]) -> None:
        """Forget upstreams no longer configured."""
        for table in (self.engines, self.quotas):
            for name in [n for n in table if n not in names]:
                del table[name]

    def forget(self, name: str) -> None:
        """Forget what was learned about ``name`` (it now names another endpoint)."""
        self.engines.pop(name, None)
        self.quotas.pop(name, None)

    def engine(self, name: str) -> EngineSignal:
        signal = self.engines.get(name)
        if signal is None:
            signal = self.engines[name] = EngineSignal()
        return signal

    def quota(self, name: str) -> QuotaState:
        state = self.quotas.get(name)
        if state is None:
            state = self.quotas[name] = QuotaState()
        return state

    def reading(self, name: str, load: EngineLoad, now: float, inflight: int) -> None:
        """Record a reading of ``name``'s engine that arrived at ``now`` with ``inflight`` of ours running."""
        signal = self.engine(name)
        signal.load, signal.at, signal.inflight_at, signal.failures = load, now, inflight, 0
        seen = observed_capacity(load)
        if seen is not None:
            old = signal.capacity
            signal.capacity = seen if old is None else old + CAPACITY_ALPHA * (seen - old)

    def failed(self, name: str) -> int:
        """Count a failed scrape of ``name``; the failures in a row so far."""
        signal = self.engine(name)
        signal.failures += 1
        return signal.failures

    def fresh(self, name: str, now: float) -> EngineLoad | None:
        """The engine reading of ``name`` if it is younger than ``stale_after``."""
        signal = self.engines.get(name)
        if signal is None or signal.load is None or now - signal.at > self.stale_after:
            return None
        return signal.load

    def outstanding(self, name: str, now: float, inflight: int) -> float | None:
        """Requests running or waiting at ``name``'s engine now (``None`` without a fresh reading):
        the reading's running + waiting, plus what this proxy sent since, less what it saw finish;
        never below this proxy's own ``inflight``."""
        load = self.fresh(name, now)
        if load is None or (load.running is None and load.waiting is None):
            return None
        signal = self.engines[name]
        seen = (load.running or 0.0) + (load.waiting or 0.0)
        return max(float(inflight), seen + inflight - signal.inflight_at)

    def capacity(self, name: str) -> float | None:
        signal = self.engines.get(name)
        return signal.capacity if signal is not None else None
