"""Open-loop chat traffic from the host to a Service's ClusterIP, every outcome recorded with its time.

``keepalive=False`` opens a connection per request, like many independent clients (kube-proxy spreads
connections, so new pods get their share at once); ``keepalive=True`` reuses a pool, like one busy client
(the connections stay on the pods they were opened to; draining a pod must hand them back cleanly).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import orjson


@dataclass
class Outcome:
    at: float  # time.monotonic() when the request was sent
    result: str  # "200", "503", or the exception's class name


@dataclass
class Traffic:
    url: str
    rate: float
    keepalive: bool = True
    model: str = "gpt-4o-mini"
    timeout: float = 30.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _error: BaseException | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Traffic:
        """Stop sending, wait for what is in flight; raises if the sender itself broke."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 10)
        if self._error is not None:
            raise RuntimeError("the traffic sender failed") from self._error
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self._error = exc

    def counts(self, since: float = 0.0, until: float = float("inf")) -> Counter[str]:
        return Counter(o.result for o in list(self.outcomes) if since <= o.at < until)

    def failures(self, since: float = 0.0, until: float = float("inf")) -> int:
        return sum(n for result, n in self.counts(since, until).items() if result != "200")

    async def _run(self) -> None:
        connector = (
            aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
            if self.keepalive
            else aiohttp.TCPConnector(limit=0, force_close=True)
        )
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            next_at = time.monotonic()
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_at:
                    task = asyncio.create_task(self._one(session, now))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    next_at += 1.0 / self.rate if self.rate > 0 else 0.2
                    if next_at < now - 1:  # never burst to catch up after a stall
                        next_at = now
                    continue
                await asyncio.sleep(min(0.01, next_at - now))
            if tasks:
                await asyncio.wait(tasks, timeout=self.timeout)

    async def _one(self, session: aiohttp.ClientSession, at: float) -> None:
        if self.rate <= 0:
            return
        body = {"model": self.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
        try:
            async with session.post(
                f"{self.url}/v1/chat/completions",
                data=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
            ) as resp:
                await resp.read()
                result = str(resp.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            result = type(exc).__name__
        with contextlib.suppress(Exception):
            self.outcomes.append(Outcome(at, result))
