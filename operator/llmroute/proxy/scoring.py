"""The ResourceAware score of an upstream and the power-of-two-choices pick (pure: no clock, no I/O).

The score estimates how loaded an upstream would be with one more request (lower is better)::

    score = (load + 1) / capacity / headroom x latency x (1 + failures)   [+ 1e3 cooling] [+ 1e6 ejected]

- ``load``: requests running or waiting at the engine now (its own gauges corrected by this proxy's
  sends since the reading), or, without a fresh reading, this proxy's own in-flight count to it;
- ``capacity``: concurrent requests the engine holds (learned from its gauges); an upstream without one
  gets the median of the candidates that have one, or 1 (so a pool without engines is least connections);
- ``headroom``: the remaining share of its rate-limit quota (hosted APIs' ``x-ratelimit-*`` headers,
  floored at 1 %); 1 when it reports none. Dividing by it shrinks an upstream's effective capacity as
  its quota runs out, so load spreads in proportion to the quota that is left;
- ``latency``: its latency EWMA over the candidates' mean, clamped to [0.5, 2] (1 when unknown): a slower
  upstream of equal load is worse, but a lagging average never outweighs the live signals;
- ``failures``: consecutive failed attempts (passive health); ``cooling``: after a 429, until its
  ``Retry-After``; ``ejected``: passively ejected. The offsets put those last, in that order.

Choice: two distinct candidates drawn at random, the lower score first (power of two choices:
Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing", IEEE TPDS 2001): many proxy
replicas reading the same signals then spread their picks instead of all herding onto the one best
upstream. The others follow by score, for retries.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

LATENCY_CLAMP = (0.5, 2.0)
MIN_HEADROOM = 0.01
COOLING_PENALTY = 1e3
EJECTED_PENALTY = 1e6


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the score reads about one upstream. ``load``: requests at its engine now (``None``: no fresh
    engine reading); ``inflight``: this proxy's requests to it; ``capacity``: learned concurrent
    requests (``None``: unknown); ``headroom``: remaining quota share 0..1 (``None``: not reported);
    ``latency``: EWMA seconds (0: unknown)."""

    name: str
    inflight: int = 0
    load: float | None = None
    capacity: float | None = None
    headroom: float | None = None
    latency: float = 0.0
    failures: int = 0
    cooling: bool = False
    ejected: bool = False


def score(c: Candidate, default_capacity: float = 1.0, mean_latency: float = 0.0) -> float:
    """The candidate's score (see the module docstring); ``default_capacity`` stands in for an unknown
    capacity, ``mean_latency`` is the candidates' mean latency EWMA (0: unknown)."""
    load = c.load if c.load is not None else float(c.inflight)
    capacity = c.capacity if c.capacity and c.capacity > 0 else default_capacity
    headroom = max(MIN_HEADROOM, c.headroom) if c.headroom is not None else 1.0
    latency = 1.0
    if c.latency > 0 and mean_latency > 0:
        low, high = LATENCY_CLAMP
        latency = min(high, max(low, c.latency / mean_latency))
    value = (load + 1.0) / capacity / headroom * latency * (1 + c.failures)
    if c.cooling:
        value += COOLING_PENALTY
    if c.ejected:
        value += EJECTED_PENALTY
    return value


def scores(candidates: list[Candidate]) -> dict[str, float]:
    """Every candidate's score, with the shared references (default capacity, mean latency) taken from
    the candidates themselves."""
    known = [c.capacity for c in candidates if c.capacity and c.capacity > 0]
    default_capacity = statistics.median(known) if known else 1.0
    latencies = [c.latency for c in candidates if c.latency > 0]
    mean_latency = statistics.fmean(latencies) if latencies else 0.0
    return {c.name: score(c, default_capacity, mean_latency) for c in candidates}


def choose(candidates: list[Candidate], rng: random.Random) -> list[str]:
    """Upstream names in the order to try: the better of two random candidates, then the rest by score
    (ties in random order)."""
    by_name = scores(candidates)
    names = list(by_name)
    rng.shuffle(names)
    if len(names) <= 2:
        return sorted(names, key=by_name.__getitem__)
    first = min(names[:2], key=by_name.__getitem__)  # names is shuffled: its first two are a random pair
    rest = sorted((n for n in names if n != first), key=by_name.__getitem__)
    return [first, *rest]
