"""Reads the metrics of every upstream that names an ``engine``, every ``engineMetrics`` interval.

Each round fetches all such upstreams' ``metricsUrl`` at once, each bounded by the scrape timeout, parses
it (:func:`llmroute.proxy.engines.read_engine_load`) and records the reading in the balancer's signals
with this proxy's in-flight count at that moment. A read that fails (refused, timed out, not a metrics
page, no known gauge) records nothing: the previous reading goes stale after three intervals and the
upstream is balanced by connection count until a read succeeds again. Failures are logged once per
outage and counted in ``llmroute_proxy_engine_scrapes_total{route,upstream,outcome}``. No credentials
are sent to a metrics endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp

from llmroute.proxy.balancer import Balancer
from llmroute.proxy.engines import read_engine_load
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.periodic import Periodic
from llmroute.proxy.snapshot import ConfigSnapshot
from llmroute.spec.proxyconfig import UpstreamConfig

log = logging.getLogger("llmroute.proxy.scrape")

MAX_PAGE_BYTES = 8 * 1024 * 1024
IDLE_WAIT = 1.0  # seconds between looks at the config while no upstream names an engine


class EngineScraper:
    """The scrape loop (:meth:`start`, :meth:`stop`) and one round of it (:meth:`round`)."""

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
        self.task = Periodic("engine metrics round", self._round, self._interval, log, fixed_rate=True)

    def start(self) -> None:
        self.task.start()

    async def stop(self) -> None:
        await self.task.stop()

    def _engines(self) -> tuple[ConfigSnapshot | None, list[UpstreamConfig]]:
        """The current snapshot and its upstreams that have a metrics URL (none without a snapshot)."""
        snap = self.current()
        return snap, [u for u in snap.config.upstreams if u.metrics_url] if snap is not None else []

    async def _round(self) -> None:
        snap, engines = self._engines()
        if snap is not None and engines:
            await self.round(snap, engines)

    def _interval(self) -> float:
        snap, engines = self._engines()
        if snap is None or not engines:
            return IDLE_WAIT
        return snap.config.engine_metrics.scrape_interval_seconds

    async def round(self, snap: ConfigSnapshot, engines: list[UpstreamConfig]) -> None:
        """Read every engine of ``engines`` once, concurrently."""
        await asyncio.gather(*(self.scrape(snap, up) for up in engines))

    async def scrape(self, snap: ConfigSnapshot, up: UpstreamConfig) -> str:
        """Read ``up``'s engine once and record the reading; the outcome (``ok``, ``timeout``, ``error``,
        ``status_<code>`` or ``unreadable``)."""
        outcome, text = await self._fetch(up, snap.config.engine_metrics.scrape_timeout_seconds)
        if outcome == "ok":
            try:
                load = read_engine_load(text, up.engine or "Auto")
            except ValueError:
                load = None
            if load is None:
                outcome = "unreadable"
            else:
                now = asyncio.get_running_loop().time()
                self.balancer.signals.reading(up.name, load, now, self.balancer.state(up.name).inflight)
        if outcome != "ok" and self.balancer.signals.failed(up.name) == 1:
            log.warning("engine metrics of %s unavailable (%s): balanced by connections", up.name, outcome)
        self.metrics.child(self.metrics.engine_scrapes, snap.route, up.name, outcome).inc()
        return outcome

    async def _fetch(self, up: UpstreamConfig, seconds: float) -> tuple[str, str]:
        """(outcome, page text) of one GET of ``up``'s metrics URL, bounded by ``seconds``."""
        assert up.metrics_url is not None
        try:
            async with asyncio.timeout(seconds):
                async with self.session.get(up.metrics_url, headers={"Accept": "text/plain"}) as resp:
                    if resp.status != 200:
                        return f"status_{resp.status}", ""
                    body = await resp.content.read(MAX_PAGE_BYTES)
        except TimeoutError:
            return "timeout", ""
        except (aiohttp.ClientError, OSError):
            return "error", ""
        return "ok", body.decode("utf-8", "replace")
