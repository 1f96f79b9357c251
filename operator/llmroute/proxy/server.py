"""Run the proxy: an aiohttp server on uvloop, stopped gracefully on SIGTERM/SIGINT.

Graceful stop: ``/readyz`` turns 503 first (so Kubernetes stops sending traffic), then the listener closes
and in-flight requests — streams included — get up to ``shutdown_timeout`` seconds to finish.
Handler cancellation is on: when a client disconnects, its handler is cancelled at once, which closes the
upstream connection and so cancels the upstream request.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from typing import Any

from aiohttp import web

from llmroute.proxy.app import ProxyApp

log = logging.getLogger("llmroute.proxy")


class ProxyServer:
    """One proxy listening on ``host:port`` (port 0 picks a free one; see :attr:`port`)."""

    def __init__(
        self,
        config_path: str,
        host: str = "127.0.0.1",
        port: int = 8080,
        reload_interval: float = 1.0,
        shutdown_timeout: float = 30.0,
        access_log_fd: int = 1,
    ) -> None:
        self.proxy = ProxyApp(config_path, reload_interval, access_log_fd)
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.proxy.app(),
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=self.shutdown_timeout,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=2048, reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("listening on %s", self.url)

    async def stop(self) -> None:
        self.proxy.draining = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def serve(server: ProxyServer, drain_seconds: float = 0.0) -> None:
    """Serve until SIGTERM or SIGINT, then drain and stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    gc.collect()
    gc.freeze()  # start-up objects (modules, config, metrics) never become garbage: keep them out of GC scans
    try:
        await stop.wait()
        log.info("stopping: draining in-flight requests")
        server.proxy.draining = True
        if drain_seconds > 0:
            await asyncio.sleep(drain_seconds)  # let endpoints controllers see /readyz fail first
    finally:
        await server.stop()


def run(server: ProxyServer, drain_seconds: float = 0.0) -> int:
    """Serve on uvloop (``LLMROUTE_PROXY_LOOP=asyncio`` selects the standard loop, for comparison)."""
    runner: Any = asyncio.run
    if os.environ.get("LLMROUTE_PROXY_LOOP", "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
            pass
        else:
            runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(server, drain_seconds))
    return 0
