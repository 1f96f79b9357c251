"""Price per-minute limits the way the proxy enforces them: the log's arrivals replayed through its GCRA.

The proxy enforces a per-minute limit as a steady rate with one second's burst (:mod:`llmroute.core.gcra`),
so a limit read from counts per minute refuses more than the counts say whenever a client bunches its
requests inside a minute. A :class:`Pacer` is one limiter key (a client in its tier, or a tier
route-wide): it runs that GCRA for every limit on :data:`GRID` at once, requests strictly (the request
must fit) and tokens by debt (admitted while not in debt beyond the burst, then charged the request's
logged tokens), and adds what each limit admitted to the tier's :class:`Refusals`. Memory is one array
of :data:`GRID` TATs per kind per key, plus the arrivals of the last :data:`~llmroute.sim.logstats.HORIZON`
minutes waiting to be put in time order: it grows with the clients active at once, not with the lines.

A request arrives at its line's ``time`` (when the answer ended) minus its ``latency_ms``. The limiters
are route-wide: the figures the Redis store enforces exactly; without the store each replica enforces
its share with a burst of its own, so the replicas together refuse a little less. A refused request is
not retried here (a client that retries sends more than the log shows).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from llmroute.core.gcra import BURST_SECONDS, WINDOW_SECONDS

MANTISSAS = (10, 12, 15, 20, 25, 30, 40, 50, 60, 80)  # two digits, steps of at most a third
GRID_DECADES = 10  # the grid reaches 10**GRID_DECADES units a minute


def _grid() -> NDArray[np.float64]:
    small = list(range(1, 10))
    rest = [m * 10**d for d in range(GRID_DECADES) for m in MANTISSAS]
    return np.array([*small, *rest, 10 ** (GRID_DECADES + 1)], dtype=np.float64)


GRID = _grid()  # per-minute limits priced at once: 1..9, then two significant digits in steps of <= 1/3
INTERVAL = WINDOW_SECONDS / GRID  # seconds per unit (the emission interval)
TAU = np.maximum(BURST_SECONDS, INTERVAL)  # the burst tolerance, seconds


def grid_up(value: float) -> int:
    """The smallest :data:`GRID` limit at or above ``value`` (the largest one beyond it)."""
    index = int(np.searchsorted(GRID, value - 1e-9))
    return int(GRID[min(index, len(GRID) - 1)])


TOKENS_FLOOR = 1000  # tokens a minute: smaller token limits are not priced (one ordinary request is more)
NEG_INTERVAL = [-i for i in INTERVAL.tolist()]  # ascending, for bisect
INTERVALS = INTERVAL.tolist()
TAUS = TAU.tolist()
G = len(GRID)
NO_TATS = array("d", bytes(8 * G))


@dataclass
class Refusals:
    """What every :data:`GRID` limit would have admitted of one tier's traffic of one kind.

    ``lo`` is the index of the smallest limit replayed: 0 for requests, :data:`TOKENS_FLOOR` for tokens.
    For tokens the requests carrying them are counted too: a limit's refused share is the larger of the
    tokens' and the requests', so one huge request (whose tokens outweigh the rest) cannot make a limit
    that refuses everyone after it look harmless."""

    strict: bool  # requests: the request must fit; tokens: admitted while not in debt beyond the burst
    sent: float = 0.0
    late: float = 0.0  # units left out: they reached the replay after later ones had been replayed
    lo: int = -1  # set from strict in __post_init__
    each: list[float] = field(default_factory=lambda: [0.0] * G)  # admitted at one limit
    suffix: list[float] = field(default_factory=lambda: [0.0] * (G + 1))  # admitted at this limit and above
    sent_count: float = 0.0  # requests (for tokens: the requests carrying them)
    count_each: list[float] = field(default_factory=lambda: [0.0] * G)
    count_suffix: list[float] = field(default_factory=lambda: [0.0] * (G + 1))

    @property
    def late_share(self) -> float:
        """The share of the tier's units left out of the replay for coming out of order (0..1)."""
        whole = self.sent + self.late
        return self.late / whole if whole > 0 else 0.0

    def admitted(self) -> NDArray[np.float64]:
        out: NDArray[np.float64] = np.array(self.each) + np.cumsum(self.suffix[:G])
        return out

    def _refused(self, admitted: NDArray[np.float64], sent: float) -> NDArray[np.float64]:
        if sent <= 0:
            return np.zeros(G)
        out = np.clip(1.0 - admitted / sent, 0.0, 1.0)
        out[: self.lo] = 1.0  # not priced
        return out

    def unit_shares(self) -> NDArray[np.float64]:
        """The share (0..1) of the units (requests, tokens) refused at every :data:`GRID` limit (1 below
        :attr:`lo`: not priced)."""
        return self._refused(self.admitted(), self.sent)

    def count_shares(self) -> NDArray[np.float64]:
        """The share (0..1) of the requests refused at every :data:`GRID` limit (for tokens: of those
        carrying tokens)."""
        if self.strict:
            return self.unit_shares()
        admitted = np.array(self.count_each) + np.cumsum(self.count_suffix[:G])
        return self._refused(admitted, self.sent_count)

    def shares(self) -> NDArray[np.float64]:
        """The refused share at every :data:`GRID` limit: the larger of :meth:`unit_shares` and
        :meth:`count_shares`."""
        return np.maximum(self.unit_shares(), self.count_shares())

    def _index(self, limit: float) -> int:
        index = int(np.searchsorted(GRID, limit))
        if index >= G or GRID[index] != limit:
            raise ValueError(f"{limit} is not a priced limit")
        return index

    def share(self, limit: float) -> float:
        """The share of the units refused at ``limit`` (a :data:`GRID` value; raises ``ValueError``
        otherwise)."""
        return float(self.unit_shares()[self._index(limit)])

    def count_share(self, limit: float) -> float:
        """The share of the requests refused at ``limit``, as :meth:`share`."""
        return float(self.count_shares()[self._index(limit)])

    def smallest(self, at_least: float, max_share: float) -> int | None:
        """The smallest :data:`GRID` limit at or above ``at_least`` that, like every larger one, refuses at
        most ``max_share``; ``None`` when even the grid's largest refuses more."""
        ok = self.shares() <= max_share + 1e-12
        tail = np.logical_and.accumulate(ok[::-1])[::-1]  # this limit and every larger one
        start = int(np.searchsorted(GRID, at_least - 1e-9))
        hits = np.flatnonzero(tail[start:])
        return int(GRID[start + hits[0]]) if hits.size else None

    def __post_init__(self) -> None:
        if self.lo < 0:
            self.lo = 0 if self.strict else int(np.searchsorted(GRID, TOKENS_FLOOR))


class Limiters:
    """One key's GCRA at every :data:`GRID` limit of one kind. The limits idle at the latest arrival
    (TAT not after it) form a suffix of the grid whose TATs are one formula, ``at + cost x interval``
    (:attr:`anchor`), so an arrival costs work only for the limits still in debt."""

    __slots__ = ("anchor", "tat")

    def __init__(self) -> None:
        self.tat = NO_TATS[:]  # explicit TATs (seconds) below the anchor's first index
        self.anchor: tuple[float, float, int] = (-math.inf, 0.0, 0)  # (at, cost, first index)

    def replay(self, arrivals: list[tuple[float, float]], into: Refusals, strict: bool) -> None:
        """Arrivals ``(at seconds, tokens)`` in time order: one request each (``strict``, unsampled logs)
        or its tokens (by debt; an arrival without tokens changes nothing)."""
        lo, tat, intervals, taus = into.lo, self.tat, INTERVALS, TAUS
        each, suffix, neg = into.each, into.suffix, NEG_INTERVAL
        count_each, count_suffix = into.count_each, into.count_suffix
        a_at, a_cost, a_from = self.anchor
        sent = count = 0.0
        for at, tokens in arrivals:
            cost = 1.0 if strict else tokens
            if cost <= 0:
                continue
            sent += cost
            count += 1.0
            j = a_from
            if a_from < G and a_cost > 0:  # the anchored limits still in debt become explicit
                j = bisect_left(neg, (a_at - at) / a_cost)
                if j > a_from:
                    for i in range(a_from if a_from > lo else lo, j):
                        tat[i] = a_at + a_cost * intervals[i]
                else:
                    j = a_from
            k = j
            while k > lo and tat[k - 1] <= at:
                k -= 1
            if strict:  # cost is 1.0: the interval is ``cost * interval`` exactly
                for i in range(lo, k):
                    t = tat[i]
                    t = (t if t > at else at) + intervals[i]
                    if t <= at + taus[i] + 1e-9:
                        tat[i] = t
                        each[i] += 1.0
            else:
                for i in range(lo, k):
                    t = tat[i]
                    base = t if t > at else at
                    if base <= at + taus[i] + 1e-9:
                        tat[i] = base + cost * intervals[i]
                        each[i] += cost
                        count_each[i] += 1.0
            suffix[k] += cost  # idle limits admit (one request, or tokens by debt) and restart from now
            count_suffix[k] += 1.0
            a_at, a_cost, a_from = at, cost, k
        self.anchor = (a_at, a_cost, a_from)
        into.sent += sent
        into.sent_count += count

    def idle_at(self, lo: int) -> float:
        """When every limit from index ``lo`` up is idle again (seconds)."""
        a_at, a_cost, a_from = self.anchor
        first = max(a_from, lo)
        latest = a_at + a_cost * INTERVALS[first] if first < G else -math.inf
        return max(latest, max(self.tat[lo:a_from], default=-math.inf))


class Pacer:
    """The GCRA of one limiter key (requests and tokens) over every :data:`GRID` limit: arrivals
    appended to :attr:`pending` in any order within a horizon, :meth:`flush` replays those before a time
    in time order."""

    __slots__ = ("pending", "replayed", "requests", "to_requests", "to_tokens", "tokens")

    def __init__(self, to_requests: Refusals, to_tokens: Refusals) -> None:
        self.to_requests, self.to_tokens = to_requests, to_tokens
        self.pending: list[tuple[float, float]] = []  # (arrival s, tokens), one request each, any order
        self.requests = Limiters()
        self.tokens = Limiters()
        self.replayed = -math.inf  # the latest arrival replayed (seconds)

    def flush(self, before: float | None = None) -> None:
        """Replay, in time order, the buffered arrivals before ``before`` seconds (all when ``None``)."""
        if not self.pending:
            return
        self.pending.sort()
        late = bisect_left(self.pending, (self.replayed, -math.inf))
        if late:  # behind what was replayed already: out of order by more than the horizon
            self.to_requests.late += late
            self.to_tokens.late += sum(t for _, t in self.pending[:late])
            del self.pending[:late]
        if before is None:
            now, self.pending = self.pending, []
        else:
            cut = bisect_left(self.pending, (before, -math.inf))
            now, self.pending = self.pending[:cut], self.pending[cut:]
        if now:
            self.requests.replay(now, self.to_requests, strict=True)
            self.tokens.replay(now, self.to_tokens, strict=False)
            self.replayed = now[-1][0]

    def idle_at(self) -> float:
        """When every limiter of this key is idle again (seconds): from then on it is a new key."""
        return max(self.requests.idle_at(self.to_requests.lo), self.tokens.idle_at(self.to_tokens.lo))
