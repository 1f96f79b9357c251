"""Active health probes. An upstream that carried no request for a probe interval — typically one the
operator failed away from — gets a cheap ``GET {url}/models``, so there is evidence when it recovers.

Outcomes are counted in ``llmroute_proxy_upstream_probes_total{route,upstream,outcome}`` with the same
outcome values as real attempts (``ok``, ``status_<code>``, ``timeout``, ``error``); the operator's
default upstream-health queries read both. Any answer below 500 other than 429 counts as ``ok``: the
endpoint is up even if it does not list models. Busy upstreams are never probed; their traffic tells.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import aiohttp

from llmroute.proxy.balancer import Balancer
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.snapshot import ConfigSnapshot
from llmroute.spec.proxyconfig import UpstreamConfig

log = logging.getLogger("llmroute.proxy.probe")


class Prober:
    def __init__(
        self,
        current: Callable[[], ConfigSnapshot | None],
        session: aiohttp.ClientSession,
        balancer: Balancer,
        metrics: ProxyMetrics,
    ) -> None:
        self.current = current
        self.session = session
        self.balancer = balancer
        self.metrics = metrics
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            snap = self.current()
            interval = snap.config.passive_health.probe_interval_seconds if snap else 5.0
            if snap is not None and interval > 0:
                await self.round(snap, interval)
            await asyncio.sleep(interval if interval > 0 else 5.0)

    async def round(self, snap: ConfigSnapshot, interval: float) -> None:
        """Probe every upstream idle for at least ``interval`` seconds, concurrently."""
        now = time.monotonic()
        idle = [u for u in snap.config.upstreams if now - self.balancer.state(u.name).last_used >= interval]
        await asyncio.gather(*(self.probe(snap, u) for u in idle))

    async def probe(self, snap: ConfigSnapshot, up: UpstreamConfig) -> str:
        timeouts = snap.config.timeouts
        timeout = aiohttp.ClientTimeout(
            total=min(timeouts.first_byte_seconds, 10.0), sock_connect=timeouts.connect_seconds
        )
        headers = {}
        key = snap.upstream_keys.get(up.name)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            async with self.session.get(
                up.url.rstrip("/") + "/models", headers=headers, timeout=timeout
            ) as resp:
                await resp.read()
                status = resp.status
            outcome = f"status_{status}" if status >= 500 or status == 429 else "ok"
        except TimeoutError:
            outcome = "timeout"
        except aiohttp.ClientError:
            outcome = "error"
        self.metrics.child(self.metrics.probes, snap.route, up.name, outcome).inc()
        return outcome
