"""Load balancing within the active group, failover order across groups, and passive health.

:meth:`Balancer.plan` returns the upstreams to try for one request, best first: the members of the
config's ``active_group`` ordered by the route's strategy, then the other groups (higher numbers first in
line after the active one, then lower ones). Upstreams with ``active: false`` or weight 0 are never used;
ejected ones are skipped unless nothing else is left (then the soonest-to-return are tried: a replica
with only ejected upstreams still serves rather than failing everything).

``ResourceAware`` scores each member on its engine's load, its quota headroom, this proxy's in-flight
count, latency and health (:mod:`llmroute.proxy.scoring`, signals in :mod:`llmroute.proxy.signals`) and
picks by power of two choices.

Passive health: ``consecutive_failures`` failures in a row eject an upstream for ``eject_seconds``,
doubling with each consecutive ejection up to ``max_eject_seconds``; a success resets the count. A reload
that changes those times applies them to the ejections running, counted from when each began.

What is learned about an upstream belongs to the endpoint it was learned from: a reload that keeps an
upstream's name but points it at another ``url`` starts it afresh (not ejected, no failures, latency,
engine readings or quota), keeping only its count of requests still out; a changed ``metricsUrl`` drops
its engine readings and learned capacity.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from llmroute.core.backoff import backoff_seconds
from llmroute.proxy import scoring
from llmroute.proxy.signals import UpstreamSignals
from llmroute.spec.proxyconfig import PassiveHealthConfig, ProxyConfig, UpstreamConfig

EWMA_ALPHA = 0.3
QUOTA_HEADERS = ("x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens")


@dataclass(slots=True)
class UpstreamState:
    inflight: int = 0
    ewma: float = 0.0
    failures: int = 0
    ejections: int = 0
    ejected_until: float = 0.0
    ejected_at: float = 0.0  # when the running ejection began
    current_weight: float = 0.0
    last_used: float = 0.0  # monotonic time of the last real attempt (probes skip busy upstreams)

    def ejected(self, now: float) -> bool:
        return self.ejected_until > now


def eject_duration(policy: PassiveHealthConfig, ejections: int) -> float:
    """Seconds the ``ejections``-th ejection in a row lasts: ``eject_seconds`` doubled for each before it,
    at most ``max_eject_seconds`` (:func:`llmroute.core.backoff.backoff_seconds`: an upstream down for hours
    is ejected thousands of times, and the doubling must never raise in the request path)."""
    return backoff_seconds(policy.eject_seconds, policy.max_eject_seconds, ejections)


class Balancer:
    def __init__(self, on_health: Callable[[str, bool], None], rng: random.Random | None = None) -> None:
        self.states: dict[str, UpstreamState] = {}
        self.signals = UpstreamSignals()
        self._endpoints: dict[str, tuple[str, str | None]] = {}  # name -> (url, metrics URL) learned from
        self._on_health = on_health
        self._counter = itertools.count()
        self._rng = rng or random.Random()

    def sync(self, config: ProxyConfig) -> None:
        """Keep the state of upstreams that survive a reload at the same endpoint; add new ones, forget
        removed ones, start afresh those pointed at another URL (see the module docstring)."""
        names = {u.name for u in config.upstreams}
        for name in list(self.states):
            if name not in names:
                del self.states[name]
        for name in [n for n in self._endpoints if n not in names]:
            del self._endpoints[name]
        for up in config.upstreams:
            before = self._endpoints.get(up.name)
            self._endpoints[up.name] = (up.url, up.metrics_url)
            state = self.states.get(up.name)
            if state is None:
                self.states[up.name] = UpstreamState()
                self._on_health(up.name, True)
            elif before is not None and before[0] != up.url:
                self.states[up.name] = UpstreamState(inflight=state.inflight)
                self.signals.forget(up.name)
                if state.ejected_until:
                    self._on_health(up.name, True)
            elif before is not None and before[1] != up.metrics_url:
                self.signals.engines.pop(up.name, None)
        policy = config.passive_health
        for state in self.states.values():
            if state.ejected_until:
                state.ejected_until = state.ejected_at + eject_duration(policy, state.ejections)
        self.signals.sync(names)
        self.signals.stale_after = 3 * config.engine_metrics.scrape_interval_seconds

    def state(self, name: str) -> UpstreamState:
        state = self.states.get(name)
        if state is None:
            state = self.states[name] = UpstreamState()
        return state

    def plan(self, config: ProxyConfig, candidates: list[UpstreamConfig], now: float) -> list[UpstreamConfig]:
        usable = [u for u in candidates if u.active and u.weight > 0]
        groups = sorted(
            {u.group for u in usable}, key=lambda g: (g != config.active_group, g < config.active_group, g)
        )
        plan: list[UpstreamConfig] = []
        for group in groups:
            members = [u for u in usable if u.group == group and not self.state(u.name).ejected(now)]
            plan += self._order(config.load_balancing, members, now)
        if not plan:
            plan = sorted(usable, key=lambda u: self.state(u.name).ejected_until)
        return plan[: config.passive_health.retries + 1]

    def _order(self, strategy: str, members: list[UpstreamConfig], now: float) -> list[UpstreamConfig]:
        n = len(members)
        if n <= 1:
            return members
        if strategy == "ResourceAware":
            by_name = {u.name: u for u in members}
            order = scoring.choose([self.candidate(u.name, now) for u in members], self._rng)
            return [by_name[name] for name in order]
        start = next(self._counter) % n
        rotated = members[start:] + members[:start]
        if strategy == "RoundRobin":
            return rotated
        if strategy == "LeastConnections":
            return sorted(rotated, key=lambda u: self.state(u.name).inflight)
        if strategy == "LatencyAware":
            return sorted(rotated, key=lambda u: self._score(u.name))
        return self._weighted(members)

    def candidate(self, name: str, now: float) -> scoring.Candidate:
        """What the ResourceAware score reads about upstream ``name`` at ``now``."""
        state = self.state(name)
        quota = self.signals.quotas.get(name)
        return scoring.Candidate(
            name=name,
            inflight=state.inflight,
            load=self.signals.outstanding(name, now, state.inflight),
            capacity=self.signals.capacity(name),
            headroom=quota.headroom(now) if quota is not None else None,
            latency=state.ewma,
            failures=state.failures,
            cooling=quota.cooling(now) if quota is not None else False,
            ejected=state.ejected(now),
        )

    def _score(self, name: str) -> float:
        state = self.state(name)
        return state.ewma * (state.inflight + 1)

    def _weighted(self, members: list[UpstreamConfig]) -> list[UpstreamConfig]:
        """Smooth weighted round robin (as nginx does) for the first pick; the rest by weight."""
        total = 0
        best: UpstreamConfig | None = None
        for u in members:
            state = self.state(u.name)
            state.current_weight += u.weight
            total += u.weight
            if best is None or state.current_weight > self.state(best.name).current_weight:
                best = u
        assert best is not None
        self.state(best.name).current_weight -= total
        rest = sorted((u for u in members if u is not best), key=lambda u: -u.weight)
        return [best, *rest]

    def started(self, name: str, tokens: float = 0.0) -> None:
        """An attempt to ``name`` begins, charging about ``tokens`` tokens to its quota (if it has one)."""
        state = self.state(name)
        state.inflight += 1
        state.last_used = time.monotonic()
        quota = self.signals.quotas.get(name)
        if quota is not None:
            quota.dispatched(tokens)

    def answered(self, name: str, status: int, headers: Mapping[str, str], now: float) -> None:
        """Take in the rate-limit headers of an answer from ``name`` (and a 429's ``Retry-After``)."""
        if status == 429 or any(h in headers for h in QUOTA_HEADERS):
            self.signals.quota(name).observe(status, headers, now, time.time())

    def finished(self, name: str) -> None:
        """An attempt to ``name`` ended. The outcome of an attempt to an upstream a reload removed while it
        was out (here and in :meth:`success`/:meth:`failure`) is dropped: it would bring the upstream's
        state back (its in-flight count at -1, its health series exported again) until the next reload."""
        state = self.states.get(name)
        if state is not None:
            state.inflight -= 1

    def success(self, name: str, latency: float) -> None:
        state = self.states.get(name)
        if state is None:
            return
        state.ewma = latency if state.ewma == 0.0 else state.ewma + EWMA_ALPHA * (latency - state.ewma)
        if state.failures or state.ejections:
            state.failures = 0
            state.ejections = max(0, state.ejections - 1)
        if state.ejected_until:
            state.ejected_until = 0.0
            self._on_health(name, True)

    def failure(self, name: str, now: float, policy: PassiveHealthConfig) -> None:
        state = self.states.get(name)
        if state is None:
            return
        state.failures += 1
        if state.failures >= policy.consecutive_failures and not state.ejected(now):
            state.ejections += 1
            state.ejected_at = now
            state.ejected_until = now + eject_duration(policy, state.ejections)
            self._on_health(name, False)

    def refresh(self, now: float) -> None:
        """Report upstreams whose ejection has run out as healthy again (called before a scrape)."""
        for name, state in self.states.items():
            if state.ejected_until and not state.ejected(now):
                state.ejected_until = 0.0
                self._on_health(name, True)
