"""Send one admitted request upstream: failover plan, timeouts, retries, streaming relay.

Retries go to the next upstream of the plan (same group first, then the next groups) on connection
errors, timeouts and the statuses in ``passive_health.retry_on_status`` — but only while nothing has been
sent to the client: a non-streaming answer is read whole before it is relayed, and a stream's response
headers are sent only once its first chunk has arrived. Timeouts: ``connect_seconds`` for the TCP
connect, ``first_byte_seconds`` until the response headers (and a stream's first chunk),
``total_seconds`` for the whole request including the stream.

Once a stream has started it is relayed chunk by chunk as it arrives. If the upstream then fails (reset,
timeout, or an end without ``data: [DONE]``), the proxy appends an OpenAI-style ``error`` event and ends
the stream; OpenAI clients raise on it. If the client goes away, the upstream connection is closed at once,
which cancels the upstream request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from llmroute.proxy import errors
from llmroute.proxy.balancer import Balancer
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.snapshot import ConfigSnapshot
from llmroute.proxy.tokens import StreamScan, Usage, from_body
from llmroute.spec.proxyconfig import UpstreamConfig

log = logging.getLogger("llmroute.proxy.forward")

PASS_HEADERS = ("Retry-After", "retry-after-ms", "x-request-id", "openai-processing-ms")
TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError, TimeoutError)
CLIENT_GONE = 499  # nginx's convention for "client closed the request"


@dataclass(slots=True)
class ForwardResult:
    """How forwarding ended: the response to return (``None`` if already streamed or the client left),
    the status and upstream to record, usage, and the body to cache."""

    response: web.StreamResponse | None
    status: int
    upstream: str
    usage: Usage | None = None
    first_byte_at: float | None = None  # perf_counter() when a stream sent its first byte
    body: bytes | None = None
    content_type: str = errors.JSON
    retries: int = 0  # attempts before the one that answered


@dataclass(frozen=True, slots=True)
class Call:
    """One request to forward, as the handler prepared it."""

    path: str
    body: bytes
    payload: dict[str, Any]
    stream: bool
    start: float
    prompt_estimate: int
    client_auth: str | None
    headers: dict[str, str]


class Forwarder:
    """Forwards admitted requests over one upstream HTTP client, opened with the server (:meth:`open`)."""

    def __init__(self, balancer: Balancer, metrics: ProxyMetrics) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.balancer = balancer
        self.metrics = metrics
        self._urls: dict[tuple[str, str], URL] = {}
        self._client_timeout = aiohttp.ClientTimeout(total=None)

    def open(self) -> aiohttp.ClientSession:
        """Open the upstream HTTP client (in the running event loop) and return it, to share with probes."""
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60, keepalive_timeout=30)
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),
            cookie_jar=aiohttp.DummyCookieJar(),  # a gateway keeps no cookies: skip the jar on every request
        )
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def _url(self, base: str, path: str) -> URL:
        """Parsed upstream URLs, cached: parsing one per request is a measurable share of the work."""
        key = (base, path)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) > 1024:
                self._urls.clear()
            url = self._urls[key] = URL(base.rstrip("/") + path.removeprefix("/v1"))
        return url

    def _timeout(self, connect: float) -> aiohttp.ClientTimeout:
        if self._client_timeout.sock_connect != connect:
            self._client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect)
        return self._client_timeout

    def _attempt_metric(self, snap: ConfigSnapshot, upstream: str, outcome: str) -> None:
        self.metrics.child(self.metrics.attempts, snap.route, upstream, outcome).inc()

    def _upstream_headers(self, snap: ConfigSnapshot, up: UpstreamConfig, call: Call) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if call.stream:
            headers["Accept"] = "text/event-stream"
        key = snap.upstream_keys.get(up.name)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        elif call.client_auth:
            headers["Authorization"] = call.client_auth
        return headers

    def _body(self, up: UpstreamConfig, call: Call) -> bytes:
        if up.upstream_model is None or up.upstream_model == call.payload.get("model"):
            return call.body
        return orjson.dumps({**call.payload, "model": up.upstream_model})

    async def forward(
        self, request: web.Request, snap: ConfigSnapshot, candidates: list[UpstreamConfig], call: Call
    ) -> ForwardResult:
        """Try the upstreams of the balancer's plan for ``candidates`` in turn until one answers for good;
        the last failure (502/504), or 503 if no upstream is available."""
        plan = self.balancer.plan(snap.config, candidates, asyncio.get_running_loop().time())
        deadline = call.start + snap.config.timeouts.total_seconds
        last = len(plan) - 1
        for index, up in enumerate(plan):
            result = await self._attempt(request, snap, up, call, deadline, index == last)
            if result is not None:
                result.retries = index
                return result
        return ForwardResult(errors.overloaded("no upstream is available for this model"), 503, "none")

    async def _attempt(
        self,
        request: web.Request,
        snap: ConfigSnapshot,
        up: UpstreamConfig,
        call: Call,
        deadline: float,
        last: bool,
    ) -> ForwardResult | None:
        """``up``'s answer, or ``None`` to try the next upstream (never when ``last``)."""
        session = self.session
        assert session is not None, "the forwarder is not open"
        loop = asyncio.get_running_loop()
        timeouts = snap.config.timeouts
        url = self._url(up.url, call.path)
        headers = self._upstream_headers(snap, up, call)
        t0 = time.perf_counter()
        self.balancer.started(up.name)
        resp: aiohttp.ClientResponse | None = None
        done = False
        try:
            async with asyncio.timeout(max(0.0, min(timeouts.first_byte_seconds, deadline - loop.time()))):
                resp = await session.post(
                    url,
                    data=self._body(up, call),
                    headers=headers,
                    timeout=self._timeout(timeouts.connect_seconds),
                )
                streaming = call.stream and resp.status == 200 and resp.content_type == "text/event-stream"
                first = await _first_chunk(resp) if streaming else b""
            if resp.status in snap.config.passive_health.retry_on_status and not last:
                await self._retry_status(snap, up, resp, deadline)
                return None
            if streaming:
                done = True
                return await self._relay(request, snap, up, call, resp, first, deadline, t0)
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                data = await resp.read()
            done = True
            return self._complete(snap, up, call, resp, data, t0)
        except TRANSPORT_ERRORS as exc:
            if done:
                raise
            return self._failed(snap, up, exc, last)
        finally:
            self.balancer.finished(up.name)
            if resp is not None:
                resp.release() if resp.content.is_eof() else resp.close()

    async def _retry_status(
        self, snap: ConfigSnapshot, up: UpstreamConfig, resp: aiohttp.ClientResponse, deadline: float
    ) -> None:
        """Read away an answer whose status says: try another upstream; count it against ``up``."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(max(0.0, deadline - loop.time())):
            await resp.read()
        self.balancer.failure(up.name, loop.time(), snap.config.passive_health)
        self._attempt_metric(snap, up.name, f"status_{resp.status}")

    def _failed(
        self, snap: ConfigSnapshot, up: UpstreamConfig, exc: BaseException, last: bool
    ) -> ForwardResult | None:
        """Count a transport failure against ``up``; the 504 (timeout) or 502 to answer if it was ``last``."""
        timed_out = isinstance(exc, TimeoutError)
        self.balancer.failure(up.name, asyncio.get_running_loop().time(), snap.config.passive_health)
        self._attempt_metric(snap, up.name, "timeout" if timed_out else "error")
        log.info("upstream %s failed: %s", up.name, type(exc).__name__)
        if not last:
            return None
        if timed_out:
            return ForwardResult(errors.bad_gateway(504, "upstream timed out"), 504, up.name)
        return ForwardResult(errors.bad_gateway(502, "upstream connection failed"), 502, up.name)

    def _complete(
        self,
        snap: ConfigSnapshot,
        up: UpstreamConfig,
        call: Call,
        resp: aiohttp.ClientResponse,
        data: bytes,
        started: float,
    ) -> ForwardResult:
        loop = asyncio.get_running_loop()
        status = resp.status
        if status >= 500 or status in snap.config.passive_health.retry_on_status:
            self.balancer.failure(up.name, loop.time(), snap.config.passive_health)
            self._attempt_metric(snap, up.name, f"status_{status}")
        else:
            self.balancer.success(up.name, time.perf_counter() - started)
            self._attempt_metric(snap, up.name, "ok")
        content_type = resp.headers.get("Content-Type", errors.JSON)
        response = web.Response(body=data, status=status, headers=call.headers)
        response.headers["Content-Type"] = content_type
        for name in PASS_HEADERS:
            value = resp.headers.get(name)
            if value is not None and name not in response.headers:
                response.headers[name] = value
        usage = from_body(data) if status == 200 else None
        return ForwardResult(response, status, up.name, usage, None, data, content_type)

    async def _relay(
        self,
        request: web.Request,
        snap: ConfigSnapshot,
        up: UpstreamConfig,
        call: Call,
        resp: aiohttp.ClientResponse,
        first: bytes,
        deadline: float,
        started: float,
    ) -> ForwardResult:
        loop = asyncio.get_running_loop()
        self.balancer.success(up.name, time.perf_counter() - started)
        self._attempt_metric(snap, up.name, "ok")
        response = web.StreamResponse(status=200, headers=call.headers)
        response.headers["Content-Type"] = resp.headers.get("Content-Type", "text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        scan = StreamScan()
        result = ForwardResult(response, 200, up.name)
        try:
            await response.prepare(request)
            scan.feed(first)
            await response.write(first)
            result.first_byte_at = time.perf_counter()
            problem = await self._pump(resp, response, scan, deadline)
            if problem is None and not scan.done:
                problem = "upstream stream ended without [DONE]"
            if problem is not None:
                result.status = 502
                self.balancer.failure(up.name, loop.time(), snap.config.passive_health)
                await response.write(_error_event(problem))
            await response.write_eof()
        except ConnectionResetError:
            result.status = CLIENT_GONE  # client left: the finally in forward() closes the upstream
            resp.close()
        result.usage = scan.result(call.prompt_estimate)
        return result

    async def _pump(
        self, resp: aiohttp.ClientResponse, response: web.StreamResponse, scan: StreamScan, deadline: float
    ) -> str | None:
        """Relay chunks until the upstream ends; a description of the upstream failure, if any.

        Client-side write errors propagate (the caller treats them as the client leaving)."""
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await resp.content.readany()
            except TimeoutError:
                return "upstream exceeded the total timeout"
            except aiohttp.ClientError:
                return "upstream connection broke mid-stream"
            if not chunk:
                return None
            scan.feed(chunk)
            await response.write(chunk)


async def _first_chunk(resp: aiohttp.ClientResponse) -> bytes:
    """A stream's first chunk; raises :class:`aiohttp.ClientPayloadError` if the stream ends before it."""
    first = await resp.content.readany()
    if not first:
        raise aiohttp.ClientPayloadError("stream ended before its first byte")
    return first


def _error_event(message: str) -> bytes:
    """The OpenAI-style ``error`` event that ends a stream the upstream broke off."""
    event = {"error": {"message": message, "type": "server_error", "param": None, "code": "upstream_error"}}
    return b"data: " + orjson.dumps(event) + b"\n\n"
