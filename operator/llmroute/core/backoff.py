"""Capped exponential backoff: the one doubling rule shared by the failover cooldown (``core.failover``)
and the proxy's passive ejection (``proxy.balancer``)."""

from __future__ import annotations

MAX_DOUBLINGS = 60  # a wait doubles at most this often: 2**60 x any base is beyond any cap


def backoff_seconds(base: float, cap: float, count: int) -> float:
    """Seconds the ``count``-th failure in a row waits: ``base x 2^(count - 1)``, at most ``cap`` (both in
    seconds; a ``count`` below 1 waits ``base``). The exponent stops at :data:`MAX_DOUBLINGS`: a count that
    keeps growing for days (an upstream down or flapping for hours is failed thousands of times) must never
    need a number beyond a float's range (``2.0 ** 1024`` raises ``OverflowError``)."""
    doublings = min(MAX_DOUBLINGS, max(0, count - 1))
    return float(min(cap, base * 2.0**doublings))
