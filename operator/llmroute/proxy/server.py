"""Run the proxy: an aiohttp server on uvloop, stopped gracefully on SIGTERM/SIGINT.

Two listeners: the API on ``port`` and the operations endpoints (``/metrics``, ``/healthz``, ``/readyz``)
on ``metrics_port``, so the Service can expose the API alone.

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
from aiohttp.http_exceptions import HttpProcessingError

from llmroute.proxy.app import ProxyApp
from llmroute.proxy.kubewatch import ApiAccess

log = logging.getLogger("llmroute.proxy")

# what a client's malformed request raises in aiohttp: its framing or headers (HttpProcessingError and
# its subclasses: a bad byte in a header, an over-long line, a broken chunked or compressed body), or its
# body read after the handler answered (RequestPayloadError)
CLIENT_FAULTS = (HttpProcessingError, web.RequestPayloadError)


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger (``aiohttp.server``) as the proxy's listeners use it.

    aiohttp logs a request the client malformed at ERROR with a traceback, and the exception's message
    quotes the bytes it choked on — an ``Authorization`` header's among them. Such a request has been
    answered 400 already and is the client's doing, so it is logged at INFO in one line naming the
    exception's class, never its message; anything else is logged as aiohttp logs it."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        fault = kwargs.get("exc_info")
        if isinstance(fault, CLIENT_FAULTS):
            del kwargs["exc_info"]
            level, args = min(level, logging.INFO), (type(fault).__name__,)
            msg = "refused a malformed request (%s)"
        super().log(level, msg, *args, **kwargs)


def server_log() -> ServerLog:
    return ServerLog(logging.getLogger("aiohttp.server"))


class ProxyServer:
    """One proxy: the API on ``host:port``, the operations endpoints on ``host:metrics_port`` (0 picks a
    free port; see :attr:`port` and :attr:`metrics_port` once started)."""

    def __init__(
        self,
        config_path: str,
        host: str = "127.0.0.1",
        port: int = 8080,
        reload_interval: float = 1.0,
        shutdown_timeout: float = 30.0,
        metrics_port: int = 0,
        watch: tuple[ApiAccess, str] | None = None,
        access_log_fd: int = 1,
    ) -> None:
        self.proxy = ProxyApp(config_path, reload_interval, watch, access_log_fd)
        self.host = host
        self.port = port
        self.metrics_port = metrics_port
        self.shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._ops_runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}"

    async def start(self) -> None:
        self._ops_runner = web.AppRunner(
            self.proxy.ops_app(), access_log=None, shutdown_timeout=1.0, logger=server_log()
        )
        await self._ops_runner.setup()
        self.metrics_port = await _listen(self._ops_runner, self.host, self.metrics_port)
        self._runner = web.AppRunner(
            self.proxy.app(),
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=self.shutdown_timeout,
            logger=server_log(),
        )
        await self._runner.setup()
        self.port = await _listen(self._runner, self.host, self.port)
        log.info("listening on %s (metrics and health on %s)", self.url, self.metrics_url)

    async def stop(self) -> None:
        self.proxy.draining = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._ops_runner is not None:
            await self._ops_runner.cleanup()
            self._ops_runner = None


async def _listen(runner: web.AppRunner, host: str, port: int) -> int:
    """Serve ``runner`` on ``host:port``; the port it got (``port`` 0 picks a free one)."""
    site = web.TCPSite(runner, host, port, backlog=2048, reuse_address=True)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else port


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
