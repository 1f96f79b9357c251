"""Open-loop load over real HTTP: OpenAI chat requests at a time-varying rate, from several API clients.

Arrivals follow ``rate(elapsed)`` (requests/s) whatever the answers take, as real traffic does; each
request goes to the next ready endpoint in turn (round robin, as a Service spreads connections), carries
one client's API key (clients are picked at random in proportion to their weight: a few heavy ones, many
occasional ones) and is counted by outcome: served (200), rate-limited (429), failed (any other answer
or none), or unrouted (no ready endpoint). Served answers also tell which upstream produced them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
import orjson

Rate = Callable[[float], float]


@dataclass(frozen=True)
class Client:
    name: str
    tier: str
    key: str = field(repr=False)
    weight: float


@dataclass
class Tally:
    """Outcomes over some span of time."""

    sent: int = 0
    ok: int = 0
    limited: int = 0
    failed: int = 0
    unrouted: int = 0
    latencies: list[float] = field(default_factory=list)  # of served requests, seconds
    upstreams: Counter[str] = field(default_factory=Counter)
    limited_clients: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.sent += other.sent
        self.ok += other.ok
        self.limited += other.limited
        self.failed += other.failed
        self.unrouted += other.unrouted
        self.latencies += other.latencies
        self.upstreams.update(other.upstreams)
        self.limited_clients.update(other.limited_clients)
        self.errors.update(other.errors)

    def p95(self) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


class LoadGenerator:
    def __init__(
        self,
        clients: Sequence[Client],
        endpoints: Callable[[], list[str]],
        model: str,
        *,
        seed: int = 7,
        max_inflight: int = 1000,
        timeout: float = 30.0,
    ) -> None:
        self.clients = list(clients)
        self.endpoints = endpoints
        self.model = model
        self.max_inflight = max_inflight
        self.timeout = timeout
        self.total = Tally()
        self._window = Tally()
        self._random = random.Random(seed)
        self._weights = list(itertools.accumulate(c.weight for c in self.clients))
        self._turn = itertools.count()
        self._serial = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def take(self) -> Tally:
        """Outcomes since the previous call."""
        window, self._window = self._window, Tally()
        return window

    async def run(self, rate: Rate, stop: asyncio.Event, start: float, tick: float = 0.02) -> None:
        """Send at ``rate(loop.time() - start)`` until ``stop`` is set; then let in-flight requests end."""
        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=15)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            last, debt = loop.time(), 0.0
            while not stop.is_set():
                now = loop.time()
                debt += max(0.0, rate(now - start)) * (now - last)
                last = now
                while debt >= 1.0:
                    debt -= 1.0
                    self._launch(session)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), tick)
            if self._tasks:
                _, pending = await asyncio.wait(self._tasks, timeout=self.timeout)
                for task in pending:
                    task.cancel()

    def _launch(self, session: aiohttp.ClientSession) -> None:
        tally = Tally(sent=1)
        endpoints = self.endpoints()
        if not endpoints:
            tally.unrouted = 1
            self._record(tally)
            return
        if len(self._tasks) >= self.max_inflight:
            tally.failed = 1
            tally.errors["client overloaded"] += 1
            self._record(tally)
            return
        url = endpoints[next(self._turn) % len(endpoints)]
        client = self.clients[self._pick()]
        task = asyncio.create_task(self._request(session, url, client, tally))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _pick(self) -> int:
        point = self._random.random() * self._weights[-1]
        return next(i for i, w in enumerate(self._weights) if point < w)

    async def _request(self, session: aiohttp.ClientSession, url: str, client: Client, tally: Tally) -> None:
        text = f"request {next(self._serial)} from {client.name}: say hello"
        body = {"model": self.model, "messages": [{"role": "user", "content": text}], "max_tokens": 16}
        headers = {"Authorization": f"Bearer {client.key}", "Content-Type": "application/json"}
        started = time.perf_counter()
        try:
            async with session.post(
                f"{url}/v1/chat/completions", data=orjson.dumps(body), headers=headers
            ) as r:
                data = await r.read()
                status = r.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            tally.failed = 1
            tally.errors[type(exc).__name__] += 1
            self._record(tally)
            return
        if status == 200:
            tally.ok = 1
            tally.latencies.append(time.perf_counter() - started)
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                tally.upstreams[str(orjson.loads(data).get("upstream", "?"))] += 1
        elif status == 429:
            tally.limited = 1
            tally.limited_clients[client.name] += 1
        else:
            tally.failed = 1
            tally.errors[f"HTTP {status}"] += 1
        self._record(tally)

    def _record(self, tally: Tally) -> None:
        self._window.add(tally)
        self.total.add(tally)
