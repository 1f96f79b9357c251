"""The proxy's state and its two aiohttp applications (routes, start-up, shutdown, config swaps).

:class:`ProxyApp` owns what outlives a config: the rate limiter, balancer state, the cache, the admission
gate, the forwarder (and its upstream HTTP client), the health prober, the engine-metrics scraper and the
metrics (with the balancer's per-upstream load gauges), and hands the API handler the ones it uses.
:meth:`ProxyApp.apply` swaps in a new :class:`ConfigSnapshot` in place, so requests already running finish
on the snapshot they started with. Configs come from the mounted file (:class:`ConfigWatcher`) and, given
a ConfigMap to watch, from the API (:class:`ConfigMapWatch`); :class:`Delivery` decides which one is served.

The API (``/v1/...``, what the Service exposes) and the operations endpoints (``/metrics``, ``/healthz``,
``/readyz``: for Prometheus and the kubelet only) are two applications served on two ports
(:meth:`ProxyApp.app` and :meth:`ProxyApp.ops_app`), so a client of the API can reach neither the metrics
nor the health state. Every response of both carries ``x-request-id`` (the API's handlers put it on their
answers themselves: a response hook would cost every request a coroutine).
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from llmroute.proxy import errors
from llmroute.proxy.accesslog import AccessLogWriter
from llmroute.proxy.admission import PriorityGate
from llmroute.proxy.balancer import Balancer
from llmroute.proxy.cache import ResponseCache
from llmroute.proxy.delivery import Delivery
from llmroute.proxy.forward import Forwarder
from llmroute.proxy.handler import ApiHandler
from llmroute.proxy.identity import Unauthorized, resolve
from llmroute.proxy.kubewatch import ApiAccess, ConfigMapWatch
from llmroute.proxy.loadmetrics import LoadCollector
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.probe import Prober
from llmroute.proxy.ratelimit import RateLimiter
from llmroute.proxy.requestid import on_prepare, with_request_id
from llmroute.proxy.scrape import EngineScraper
from llmroute.proxy.snapshot import ConfigSnapshot
from llmroute.proxy.watch import ConfigWatcher
from llmroute.spec.proxyconfig import CacheConfig

log = logging.getLogger("llmroute.proxy")

API_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
MAX_CLIENT_BODY = 1024**3  # the real bound is the config's max_body_bytes, checked per request


def allowed_methods(router: web.UrlDispatcher, path: str) -> list[str]:
    """The methods the routes registered for exactly ``path`` take (none: the path is unknown); the
    catch-all route, a dynamic resource, is not counted."""
    methods: set[str] = set()
    for resource in router.resources():
        if isinstance(resource, web.PlainResource) and resource.canonical == path:
            methods.update(route.method for route in resource)
    return sorted(methods)


class ProxyApp:
    """The proxy: its long-lived parts, the aiohttp application, and config swaps (:meth:`apply`)."""

    def __init__(
        self,
        config_path: str,
        reload_interval: float = 1.0,
        watch: tuple[ApiAccess, str] | None = None,
        access_log_fd: int = 1,
    ) -> None:
        """``watch``: the API and the name of the ConfigMap to follow besides the file (None: file only);
        ``access_log_fd`` where access-log lines go (stdout)."""
        self.metrics = ProxyMetrics()
        self.access_log = AccessLogWriter(access_log_fd)
        self._log_dropped = 0
        self.snapshot: ConfigSnapshot | None = None
        self.draining = False
        self.limiter = RateLimiter(self.metrics)
        self.cache = ResponseCache(CacheConfig())
        self.gate = PriorityGate(256)
        self.balancer = Balancer(self._health)
        self.forwarder = Forwarder(self.balancer, self.metrics)
        self.prober: Prober | None = None
        self.scraper: EngineScraper | None = None
        self.api: ApiHandler | None = None
        self.delivery = Delivery(self.apply, self.metrics)
        self.watcher = ConfigWatcher(config_path, self.delivery.offer_file, self.metrics, reload_interval)
        self.kubewatch = (
            ConfigMapWatch(watch[0], watch[1], self.delivery.offer_api, self.metrics) if watch else None
        )
        self._route = ""
        self._hash = ""

    def serving(self) -> ConfigSnapshot | None:
        """The snapshot to serve requests with: ``None`` before the first valid config."""
        return self.snapshot

    def is_draining(self) -> bool:
        return self.draining

    def _health(self, upstream: str, healthy: bool) -> None:
        if self._route:
            self.metrics.child(self.metrics.healthy, self._route, upstream).set(1 if healthy else 0)

    def apply(self, snap: ConfigSnapshot) -> None:
        """Swap in a new config without disturbing requests in flight."""
        cfg = snap.config
        m = self.metrics
        if self._route and (self._route, self._hash) != (snap.route, snap.hash):
            m.config_info.remove(self._route, self._hash)
        if self._route and self._route != snap.route:
            for name in self.balancer.states:
                m.child(m.healthy, self._route, name).set(0)
        elif self._route:  # an upstream the reload removed is no longer reported (healthy or not)
            for name in set(self.balancer.states) - {up.name for up in cfg.upstreams}:
                m.forget(m.healthy, self._route, name)
        self._route, self._hash = snap.route, snap.hash
        m.config_info.labels(snap.route, snap.hash).set(1)
        self.balancer.sync(cfg)
        for up in cfg.upstreams:
            self._health(up.name, not self.balancer.state(up.name).ejected_until)
        self.gate.resize(cfg.admission.max_concurrency)
        self.cache.configure(cfg.cache)
        m.cache_size(snap.route, len(self.cache), self.cache.bytes)
        self.limiter.configure(snap)
        log = cfg.access_log
        if log is not None:
            self.access_log.configure(log.enabled, log.sample_rate, snap.access_log_key)
        else:
            self.access_log.configure(False)
        m.child(m.inflight, snap.route)
        self.snapshot = snap

    # --- endpoints that are not the LLM API ---------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        snap = self.snapshot
        if snap is None or self.draining:
            reason = "draining" if self.draining else (self.watcher.last_error or "no config")
            return web.json_response({"status": "not ready", "reason": reason}, status=503)
        body = {
            "status": "ready",
            "route": snap.route,
            "config": snap.hash,
            "generation": snap.config.generation,
            "source": self.delivery.source,
            "file": self.delivery.file.hash if self.delivery.file else None,
            "fileGeneration": self.delivery.file.config.generation if self.delivery.file else None,
            "lastError": self.watcher.last_error or self.delivery.api_error,
            "watchError": self.kubewatch.last_error if self.kubewatch else None,
        }
        return web.json_response(body)

    async def metrics_endpoint(self, request: web.Request) -> web.Response:
        self.balancer.refresh(asyncio.get_running_loop().time())
        if self._route:
            self.metrics.child(self.metrics.waiting, self._route).set(self.gate.waiting)
        dropped = self.access_log.dropped
        if dropped > self._log_dropped:
            self.metrics.access_log_dropped.inc(dropped - self._log_dropped)
            self._log_dropped = dropped
        body = self.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def models(self, request: web.Request) -> web.Response:
        return with_request_id(request, self._models(request))

    def _models(self, request: web.Request) -> web.Response:
        snap = self.snapshot
        if snap is None:
            return errors.overloaded("the proxy has no valid config to serve yet")
        try:
            resolve(snap, request.headers)
        except Unauthorized as exc:
            return errors.unauthorized(str(exc))
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "llmroute"} for m in snap.by_model]
        return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type=errors.JSON)

    async def not_found(self, request: web.Request) -> web.Response:
        """The answer to a request no route takes: 405 with ``Allow`` for a known path asked with another
        method, else 404."""
        allowed = allowed_methods(request.app.router, request.path)
        if allowed:
            message = f"Method {request.method} is not allowed on {request.path}: use {' or '.join(allowed)}."
            answer = errors.method_not_allowed(message, allowed)
        else:
            answer = errors.not_found(f"Unknown request URL: {request.method} {request.path}.", "unknown_url")
        return with_request_id(request, answer)

    # --- lifecycle ----------------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The API application: the LLM paths and ``/v1/models``; it starts and stops the proxy's parts."""
        app = web.Application(client_max_size=MAX_CLIENT_BODY)
        self.api = ApiHandler(
            self.serving,
            self.is_draining,
            self.limiter,
            self.cache,
            self.gate,
            self.forwarder,
            self.metrics,
            self.access_log,
        )
        for path in API_PATHS:
            app.router.add_post(path, self.api.handle)
        app.router.add_get("/v1/models", self.models)
        app.router.add_route("*", "/{tail:.*}", self.not_found)
        app.on_startup.append(self._startup)
        app.on_cleanup.append(self._cleanup)
        return app

    def ops_app(self) -> web.Application:
        """The operations application: ``/metrics``, ``/healthz`` and ``/readyz`` (its own port)."""
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_endpoint)
        app.router.add_route("*", "/{tail:.*}", self.not_found)
        app.on_response_prepare.append(on_prepare)
        return app

    async def _startup(self, app: web.Application) -> None:
        session = self.forwarder.open()
        self.prober = Prober(lambda: self.snapshot, session, self.balancer, self.metrics)
        self.scraper = EngineScraper(lambda: self.snapshot, session, self.balancer, self.metrics)
        loop = asyncio.get_running_loop()
        self.metrics.registry.register(LoadCollector(lambda: self.snapshot, self.balancer, loop.time))
        self.watcher.poll()
        self.watcher.start()
        if self.kubewatch is not None:
            self.kubewatch.start()
        self.prober.start()
        self.scraper.start()

    async def _cleanup(self, app: web.Application) -> None:
        if self.prober is not None:
            await self.prober.stop()
        if self.scraper is not None:
            await self.scraper.stop()
        await self.watcher.stop()
        if self.kubewatch is not None:
            await self.kubewatch.stop()
        await self.forwarder.close()
        await self.limiter.close()
        self.access_log.close()
