"""Active health probes. An upstream that carried no request for a probe interval — typically one the
operator failed away from — gets a cheap ``GET {url}/models``, so there is evidence when it recovers.

Outcomes are counted in ``llmroute_proxy_upstream_probes_total{route,upstream,outcome}`` with the same
outcome values as real attempts (``ok``, ``status_<code>``, ``timeout``, ``error``); the operator's
default upstream-health queries read both. Any answer below 500 other than 429 counts as ``ok``: the
endpoint is up even if it does not list models. Busy upstreams are never probed; their traffic tells.
Only the status matters: at most :data:`~llmroute.proxy.forward.MAX_DRAIN` bytes of the answer are read
away (to keep the connection); a longer list, or an endless body, is left unread and its connection closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp

from llmroute.proxy.balancer import Balancer
from llmroute.proxy.forward import MAX_DRAIN, drain
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.periodic import Periodic
from llmroute.proxy.snapshot import ConfigSnapshot
from llmroute.spec.proxyconfig import UpstreamConfig

log = logging.getLogger("llmroute.proxy.probe")
IDLE_WAIT = 5.0  # seconds between looks at the config while probes are off or there is no config


class Prober:
    """The probe loop (:meth:`start`, :meth:`stop`): a round (:meth:`round`) every probe interval, from the
    end of the previous one."""

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
        self.task = Periodic("health probe round", self._round, self._interval, log)

    def start(self) -> None:
        self.task.start()

    async def stop(self) -> None:
        await self.task.stop()

    async def _round(self) -> None:
        snap = self.current()
        if snap is not None and (interval := snap.config.passive_health.probe_interval_seconds) > 0:
            await self.round(snap, interval)

    def _interval(self) -> float:
        snap = self.current()
        interval = snap.config.passive_health.probe_interval_seconds if snap is not None else IDLE_WAIT
        return interval if interval > 0 else IDLE_WAIT

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
                status = resp.status
                if not await drain(resp, MAX_DRAIN):
                    resp.close()  # not returned to the pool half-read
            outcome = f"status_{status}" if status >= 500 or status == 429 else "ok"
        except TimeoutError:
            outcome = "timeout"
        except aiohttp.ClientError:
            outcome = "error"
        self.metrics.child(self.metrics.probes, snap.route, up.name, outcome).inc()
        return outcome
