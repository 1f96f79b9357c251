"""Send one admitted request upstream: failover plan, timeouts, retries, streaming relay.

Retries go to the next upstream of the plan (same group first, then the next groups) on connection
errors, timeouts, the statuses in ``passive_health.retry_on_status`` and an upstream's refusal of
llmroute's own credentials (401/403 to the key of its ``apiKeySecretRef``: that upstream can serve no one,
so it counts as a failure for passive health and is logged as a warning naming it) — but only while
nothing has been sent to the client: a non-streaming answer is read whole before it is relayed, and a
stream's response headers are sent only once its first chunk has arrived. Timeouts: ``connect_seconds``
for the TCP connect, ``first_byte_seconds`` until the response headers (and a stream's first chunk),
``idle_seconds`` between a stream's chunks, ``total_seconds`` for the whole request including the stream.
A non-streaming answer over :data:`MAX_BODY` bytes (by its ``Content-Length``, or counted as it arrives)
is cut off there, its connection closed, and counts as a transport failure: retried on the next upstream,
else answered ``502 upstream_error``.

An answer the upstream sends as ``text/event-stream`` is relayed as a stream chunk by chunk as it arrives,
whatever the request said (and never cached). If the upstream then fails (reset, silence beyond
``idle_seconds``, the total timeout, or an end without ``data: [DONE]``), the proxy appends an
OpenAI-style ``error`` event and ends the stream; OpenAI clients raise on it. If the client goes away,
the upstream connection is closed at once, which cancels the upstream request.

Every attempt is noted on the request's :class:`Progress` as it starts (the upstream tried, whether it
received the request, the stream relayed so far), so the settle step knows them however the request ends.
The upstream's own ``x-request-id`` reaches the client as ``x-upstream-request-id``; llmroute's request id
is sent upstream as ``X-Request-Id``. An error answered to llmroute's own key is shown to the client as
:mod:`~llmroute.proxy.upstreamerror` says (a refusal of llmroute's credentials is a 502, never the key).
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
from llmroute.proxy.outcome import Progress
from llmroute.proxy.requestid import HEADER as REQUEST_ID
from llmroute.proxy.snapshot import ConfigSnapshot
from llmroute.proxy.tokens import StreamScan, Usage, from_body
from llmroute.proxy.upstreamerror import (
    REFUSED_CREDENTIALS,
    client_view,
    scrub_error_body,
    scrub_error_events,
)
from llmroute.spec.proxyconfig import UpstreamConfig

log = logging.getLogger("llmroute.proxy.forward")
# the longest stream line relayed (bytes): an event is a few KB; an upstream that sends no line end is a
# fault, not a line to hold until the total timeout
MAX_SSE_LINE = 16 * 1024 * 1024
# the largest non-streamed answer read (bytes): well above the largest real one (embeddings of 2,048 inputs
# of 3,072 floats are about 75 MB of JSON), well below a pod's memory. An upstream that sends more (or an
# endless body) is a fault: it must not make the proxy buffer it until the pod is killed out of memory
MAX_BODY = 256 * 1024 * 1024
# the most of an error body read away to keep its connection for the next request: an error is a few
# hundred bytes; past this, closing the connection is cheaper than reading the rest
MAX_DRAIN = 64 * 1024


def _refuses_gateway(snap: ConfigSnapshot, up: UpstreamConfig, resp: aiohttp.ClientResponse) -> bool:
    """Whether ``up`` refused llmroute's own credentials (401/403 to the key llmroute sent it)."""
    return resp.status in REFUSED_CREDENTIALS and bool(snap.upstream_keys.get(up.name))


def _log_refusal(up: UpstreamConfig, status: int) -> None:
    log.warning(
        "upstream %s refused the gateway's credentials (HTTP %d): check the key in its apiKeySecretRef",
        up.name,
        status,
    )


PASS_HEADERS = ("Retry-After", "retry-after-ms", "openai-processing-ms")
UPSTREAM_REQUEST_ID = "x-upstream-request-id"
TRANSPORT_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError, TimeoutError)
CLIENT_GONE = 499  # nginx's convention for "client closed the request"


class AnswerTooLarge(aiohttp.ClientPayloadError):
    """An upstream answer over :data:`MAX_BODY` bytes (said by its ``Content-Length`` or counted while
    reading): a transport failure like a broken body, so it is handled as one (:meth:`Forwarder._failed`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"upstream answer exceeded {limit} bytes")
        self.limit = limit


@dataclass(slots=True)
class ForwardResult:
    """How forwarding ended: the response to return (already sent, for a stream), the status and upstream
    to record, the usage the upstream reported, and the body to cache (``None`` for a stream)."""

    response: web.StreamResponse | None
    status: int
    upstream: str
    usage: Usage | None = None
    body: bytes | None = None
    content_type: str = errors.JSON
    retries: int = 0  # attempts before the one that answered


@dataclass(frozen=True, slots=True)
class Call:
    """One request to forward, as the handler prepared it: ``body`` is ``payload`` as sent upstream,
    ``strip_usage`` takes the usage-only event out of the client's stream (llmroute asked for it, the
    client did not), ``progress`` receives what happens."""

    path: str
    body: bytes
    payload: dict[str, Any]
    stream: bool
    start: float
    prompt_estimate: int
    client_auth: str | None
    headers: dict[str, str]
    progress: Progress
    strip_usage: bool = False


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
        headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            REQUEST_ID: call.progress.request_id,
        }
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
        progress = call.progress
        for index, up in enumerate(plan):
            progress.upstream = up.name
            progress.attempts += 1
            progress.answer_status = None
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
        self.balancer.started(up.name, call.progress.charged)
        resp: aiohttp.ClientResponse | None = None
        done = False
        delivered_before = call.progress.delivered
        call.progress.delivered = True  # until the connection is known to have failed
        try:
            async with asyncio.timeout(max(0.0, min(timeouts.first_byte_seconds, deadline - loop.time()))):
                resp = await session.post(
                    url,
                    data=self._body(up, call),
                    headers=headers,
                    timeout=self._timeout(timeouts.connect_seconds),
                )
                self.balancer.answered(up.name, resp.status, resp.headers, loop.time())
                # the raw header, not resp.content_type (which parses it on every answer)
                ctype = resp.headers.get("Content-Type", "")
                streaming = resp.status == 200 and ctype.startswith("text/event-stream")
                first = await _first_chunk(resp) if streaming else b""
            retry = resp.status in snap.config.passive_health.retry_on_status or _refuses_gateway(
                snap, up, resp
            )
            if retry and not last:
                await self._retry_status(snap, up, resp, deadline)
                return None
            if streaming:
                done = True
                return await self._relay(request, snap, up, call, resp, first, deadline, t0)
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                data = await _read_bounded(resp, MAX_BODY)
            done = True
            return self._complete(snap, up, call, resp, data, t0)
        except TRANSPORT_ERRORS as exc:
            if done:
                raise
            if isinstance(exc, aiohttp.ClientConnectorError):
                call.progress.delivered = delivered_before  # no connection: the upstream never saw it
            return self._failed(snap, up, call, exc, last)
        finally:
            self.balancer.finished(up.name)
            if resp is not None:
                resp.release() if resp.content.is_eof() else resp.close()

    async def _retry_status(
        self, snap: ConfigSnapshot, up: UpstreamConfig, resp: aiohttp.ClientResponse, deadline: float
    ) -> None:
        """Read away an answer whose status says: try another upstream; count it against ``up``. At most
        :data:`MAX_DRAIN` bytes of it: the rest is left unread and the connection closed, not pooled."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(max(0.0, deadline - loop.time())):
            await drain(resp, MAX_DRAIN)
        self.balancer.failure(up.name, loop.time(), snap.config.passive_health)
        self._attempt_metric(snap, up.name, f"status_{resp.status}")
        if _refuses_gateway(snap, up, resp):
            _log_refusal(up, resp.status)

    def _failed(
        self, snap: ConfigSnapshot, up: UpstreamConfig, call: Call, exc: BaseException, last: bool
    ) -> ForwardResult | None:
        """Count a transport failure against ``up``; the 504 (timeout) or 502 to answer if it was ``last``.

        An answer over :data:`MAX_BODY` counts as one too (passive health, ``outcome="error"``, retried on
        the next upstream): no real answer is that large, so the upstream is at fault as much as one that
        breaks the connection, and the operator's health queries must see it."""
        timed_out = isinstance(exc, TimeoutError)
        self.balancer.failure(up.name, asyncio.get_running_loop().time(), snap.config.passive_health)
        self._attempt_metric(snap, up.name, "timeout" if timed_out else "error")
        rid = call.progress.request_id
        if isinstance(exc, AnswerTooLarge):
            log.warning(
                "request %s: upstream %s sent an answer over %d bytes: cut off", rid, up.name, exc.limit
            )
        else:
            log.info("request %s: upstream %s failed: %s", rid, up.name, type(exc).__name__)
        if not last:
            return None
        if isinstance(exc, AnswerTooLarge):
            return ForwardResult(errors.bad_gateway(502, str(exc)), 502, up.name)
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
        status = call.progress.answer_status = resp.status
        call.progress.answer_bytes = len(data)
        refused = _refuses_gateway(snap, up, resp)
        if status >= 500 or status in snap.config.passive_health.retry_on_status or refused:
            self.balancer.failure(up.name, loop.time(), snap.config.passive_health)
            self._attempt_metric(snap, up.name, f"status_{status}")
            if refused:
                _log_refusal(up, status)
        else:
            self.balancer.success(up.name, time.perf_counter() - started)
            self._attempt_metric(snap, up.name, "ok")
        content_type = resp.headers.get("Content-Type", errors.JSON)
        key = snap.upstream_keys.get(up.name)
        if key and status >= 400:  # the error speaks of llmroute's account: show the client its part only
            status, data, content_type = client_view(status, data, content_type, key)
        elif key:  # so may an error object under a success status
            data = scrub_error_body(status, data, key)
        response = web.Response(body=data, status=status, headers=call.headers)
        response.headers["Content-Type"] = content_type
        _pass_headers(resp, response)
        usage = from_body(data) if status == 200 else None
        return ForwardResult(response, status, up.name, usage, data, content_type)

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
        progress = call.progress
        progress.answer_status = 200
        response = web.StreamResponse(status=200, headers=call.headers)
        response.headers["Content-Type"] = resp.headers.get("Content-Type", "text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        _pass_headers(resp, response)
        scan = progress.scan = StreamScan(call.strip_usage)
        key = snap.upstream_keys.get(up.name)
        result = ForwardResult(response, 200, up.name)
        try:
            await response.prepare(request)
            await response.write(_client_lines(scan.feed(first), key))
            progress.first_byte_at = time.perf_counter()
            idle = snap.config.timeouts.idle_seconds
            problem = await self._pump(resp, response, scan, deadline, idle, key)
            if problem is None:
                rest = scan.rest()  # a last line without its newline: sent only if it completes the stream
                if not scan.done:
                    problem = "upstream stream ended without [DONE]"
                elif rest:
                    await response.write(_client_lines(rest, key))
            if problem is not None:
                result.status = 502
                self.balancer.failure(up.name, loop.time(), snap.config.passive_health)
                log.info("request %s: upstream %s stream failed: %s", progress.request_id, up.name, problem)
                await response.write(scan.break_off() + _error_event(problem))
            await response.write_eof()
        except ConnectionResetError:
            result.status = CLIENT_GONE  # client left: the finally in forward() closes the upstream
            resp.close()
        result.usage = scan.usage
        return result

    async def _pump(
        self,
        resp: aiohttp.ClientResponse,
        response: web.StreamResponse,
        scan: StreamScan,
        deadline: float,
        idle: float,
        key: str | None,
    ) -> str | None:
        """Relay chunks until the upstream ends (its error events stripped of ``key``, llmroute's key sent
        to it, if any); a description of the upstream failure, if any.

        Client-side write errors propagate (the caller treats them as the client leaving)."""
        loop = asyncio.get_running_loop()
        while True:
            left = deadline - loop.time()
            try:
                async with asyncio.timeout(max(0.0, min(idle, left))):
                    chunk = await resp.content.readany()
            except TimeoutError:
                if idle < left:
                    return f"upstream sent nothing for {idle:g} s (idle timeout)"
                return "upstream exceeded the total timeout"
            except aiohttp.ClientError:
                return "upstream connection broke mid-stream"
            if not chunk:
                return None
            out = scan.feed(chunk)
            if out:
                await response.write(_client_lines(out, key))
            if scan.pending > MAX_SSE_LINE:
                return f"upstream sent a stream line over {MAX_SSE_LINE} bytes"


def _client_lines(lines: bytes, key: str | None) -> bytes:
    """Whole stream ``lines`` as the client sees them: an error event of an upstream that received
    llmroute's ``key`` stripped of it (:func:`scrub_error_events`), else as the upstream sent them."""
    return scrub_error_events(lines, key) if key else lines


def _pass_headers(resp: aiohttp.ClientResponse, response: web.StreamResponse) -> None:
    """Copy the upstream headers a client may act on (``Retry-After``, ...) onto ``response``."""
    for name in PASS_HEADERS:
        value = resp.headers.get(name)
        if value is not None and name not in response.headers:
            response.headers[name] = value
    upstream_id = resp.headers.get(REQUEST_ID)
    if upstream_id is not None:
        response.headers[UPSTREAM_REQUEST_ID] = upstream_id


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body of ``resp``; raises :class:`AnswerTooLarge` as soon as it is known to exceed ``limit``
    bytes (by its ``Content-Length``, before reading any of it, or while reading), having read at most a
    chunk past ``limit``. The caller closes the connection of a body left unread."""
    length = resp.content_length
    if length is not None and length > limit:
        raise AnswerTooLarge(limit)
    content = resp.content
    chunks: list[bytes] = []
    size = 0
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def drain(resp: aiohttp.ClientResponse, limit: int) -> bool:
    """Read away the body of ``resp``, keeping none of it, unless it exceeds ``limit`` bytes (by its
    ``Content-Length``, or while reading): whether it was read to its end. A body not read to its end
    leaves a connection the caller must close rather than return to the pool."""
    length = resp.content_length
    if length is not None and length > limit:
        return False
    content = resp.content
    size = 0
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            return False
    return True


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
