"""The request path of ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``.

authenticate (401) → parse: body size (413), JSON (400), model (404) → rate limits (429) → cache (a hit
answers here) → priority admission (503 when shed) → forward upstream with failover → settle the token
charge and store the answer. A step that ends the request early raises :class:`Refused` with its answer.
Every exit is counted once in ``llmroute_requests_total`` and ``llmroute_request_duration_seconds``; a
client that leaves is counted with code 499.

:class:`ApiHandler` is given the collaborators it uses (the current config snapshot, the rate limiter,
the cache, the admission gate, the forwarder and the metrics) and nothing else of the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy

from llmroute.proxy import cache as cachemod
from llmroute.proxy import errors
from llmroute.proxy.accesslog import AccessLogWriter, error_type
from llmroute.proxy.admission import PriorityGate
from llmroute.proxy.cache import ResponseCache
from llmroute.proxy.errors import Refused
from llmroute.proxy.forward import CLIENT_GONE, Call, Forwarder, ForwardResult
from llmroute.proxy.identity import Caller, Unauthorized, presented_key, resolve
from llmroute.proxy.limits import Verdict
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.ratelimit import RateLimiter
from llmroute.proxy.snapshot import ConfigSnapshot
from llmroute.proxy.tokens import Usage, estimate
from llmroute.spec.proxyconfig import UpstreamConfig

log = logging.getLogger("llmroute.proxy")


class AnswerRecord:
    """What the metrics and the access log record about one answer, filled in as the request goes."""

    __slots__ = ("cache", "client", "code", "model", "retries", "size", "stream", "tier", "ttfb", "upstream",
                 "usage")  # fmt: skip

    def __init__(self) -> None:
        self.tier = "none"
        self.upstream = "none"
        self.code = 0
        self.cache = "bypass"
        self.ttfb: float | None = None
        self.client: bytes | None = None
        self.model: str | None = None
        self.stream = False
        self.size: int | None = None
        self.usage: Usage | None = None
        self.retries = 0


def authenticate(snap: ConfigSnapshot, headers: CIMultiDictProxy[str]) -> Caller:
    """The caller, as the route's ``limits`` identify it; raises :class:`Refused` (401) otherwise."""
    try:
        return resolve(snap, headers)
    except Unauthorized as exc:
        raise Refused(errors.unauthorized(str(exc))) from None


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body; raises :class:`Refused` (413) past ``limit`` bytes (checked before reading when possible)."""
    length = request.content_length
    if length is not None and length > limit:
        raise Refused(errors.too_large(limit))
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise Refused(errors.too_large(limit))
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def parse(snap: ConfigSnapshot, body: bytes) -> tuple[dict[str, Any], list[UpstreamConfig]]:
    """The JSON object and the upstreams serving its ``model``; raises :class:`Refused` (400, 404)."""
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Refused(errors.bad_request("We could not parse the JSON body of your request.")) from None
    if not isinstance(payload, dict):
        raise Refused(errors.bad_request("The request body must be a JSON object."))
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise Refused(errors.bad_request("you must provide a model parameter", param="model"))
    candidates = snap.by_model.get(model)
    if candidates is None:
        raise Refused(errors.not_found(f"The model `{model}` does not exist.", "model_not_found"))
    return payload, candidates


def queue_wait(snap: ConfigSnapshot, caller: Caller) -> float | None:
    """Seconds the caller may wait for an admission slot (``None``: as long as it takes, for a tier
    that is not sheddable)."""
    tier = caller.tier
    return None if tier is not None and not tier.sheddable else snap.config.admission.queue_timeout_seconds


def client_auth(snap: ConfigSnapshot, headers: CIMultiDictProxy[str]) -> str | None:
    """The client's own key to send upstream: only on a route without tiers or one that tells tiers by a
    header (a route with API-key tiers uses its upstreams' keys)."""
    limits = snap.config.limits
    if limits.tiers and limits.identity != "Header":
        return None
    key = presented_key(headers)
    return f"Bearer {key}" if key else None


class ApiHandler:
    """Serves the LLM API paths with the collaborators it is given.

    ``current()`` returns the snapshot to serve with, or ``None`` before the first valid config (the
    request is then answered 503); ``draining()`` says the proxy is stopping: requests that still reach
    it are served and their connection closed, so clients move to the replicas that stay; the others are
    the long-lived parts of the proxy the path uses.
    """

    def __init__(
        self,
        current: Callable[[], ConfigSnapshot | None],
        draining: Callable[[], bool],
        limiter: RateLimiter,
        cache: ResponseCache,
        gate: PriorityGate,
        forwarder: Forwarder,
        metrics: ProxyMetrics,
        access_log: AccessLogWriter | None = None,
    ) -> None:
        self.current = current
        self.access_log = access_log
        self.draining = draining
        self.limiter = limiter
        self.cache = cache
        self.gate = gate
        self.forwarder = forwarder
        self.metrics = metrics

    async def handle(self, request: web.Request) -> web.StreamResponse:
        snap = self.current()
        if snap is None:
            return errors.overloaded("the proxy has no valid config to serve yet")
        start = asyncio.get_running_loop().time()
        t0 = time.perf_counter()
        metrics = self.metrics
        inflight = metrics.child(metrics.inflight, snap.route)
        inflight.inc()
        record = AnswerRecord()
        response: web.StreamResponse | None = None
        try:
            response = await self._serve(request, snap, record, start)
            return response
        except Refused as refused:
            response = refused.response
            return response
        except Exception:  # a bug must not turn into a non-OpenAI error page or a dropped connection
            log.exception("unexpected error serving %s", request.path)
            record.code = 500
            response = errors.error(500, "internal error in the proxy", "server_error", "internal_error")
            return response
        finally:
            if response is not None and self.draining():
                response.force_close()  # served by a stopping proxy: the client reconnects to one that stays
            inflight.dec()
            duration = time.perf_counter() - t0
            ttfb = record.ttfb - t0 if record.ttfb is not None else duration
            code = record.code or (response.status if response is not None else CLIENT_GONE)
            metrics.answered(snap.route, record.tier, record.upstream, code, record.cache, duration, ttfb)
            if self.access_log is not None and self.access_log.sampled():
                sent = record.ttfb is not None or code != CLIENT_GONE
                self._log(request, snap, record, code, response, duration, ttfb if sent else None)

    def _log(
        self,
        request: web.Request,
        snap: ConfigSnapshot,
        record: AnswerRecord,
        code: int,
        response: web.StreamResponse | None,
        duration: float,
        ttfb: float | None,
    ) -> None:
        """Queue the request's access-log line (see :mod:`llmroute.spec.accesslog`)."""
        writer = self.access_log
        assert writer is not None
        usage = record.usage
        writer.write(
            (
                time.time(),
                request.headers.get("x-request-id"),
                snap.route,
                record.tier,
                record.client,
                request.path,
                record.model,
                record.stream,
                code,
                error_type(response, code),
                usage.input if usage is not None else None,
                usage.output if usage is not None else None,
                record.size,
                duration,
                ttfb,
                record.cache,
                record.upstream,
                record.retries,
            )
        )

    async def _serve(
        self, request: web.Request, snap: ConfigSnapshot, record: AnswerRecord, start: float
    ) -> web.StreamResponse:
        caller = authenticate(snap, request.headers)
        record.tier, record.client = caller.tier_label, caller.client
        body = await read_body(request, snap.config.max_body_bytes)
        record.size = len(body)
        payload, candidates = parse(snap, body)
        record.model, record.stream = payload["model"], payload.get("stream") is True
        path = request.path
        tokens = estimate(path, len(body), payload)
        now = time.monotonic()
        verdict = await self.limiter.admit(snap, caller, tokens, now)
        if not verdict.allowed:
            raise self._rate_limited(snap, verdict, record)
        headers = verdict.headers()
        mode = cachemod.mode(snap.config.cache, path, payload, request.headers)
        key = cachemod.cache_key(path, payload) if mode is not cachemod.Mode.OFF else b""
        if (
            mode is not cachemod.Mode.OFF
            and (hit := self._cached(key, mode, now, headers, record)) is not None
        ):
            self.limiter.correct(verdict, -tokens)
            return hit
        if not await self.gate.acquire(caller.priority, queue_wait(snap, caller)):
            raise self._shed(snap, verdict, tokens, record)
        stream = payload.get("stream") is True
        auth = client_auth(snap, request.headers)
        call = Call(path, body, payload, stream, start, len(body) // 4 + 1, auth, headers)
        try:
            result = await self.forwarder.forward(request, snap, candidates, call)
        finally:
            self.gate.release()
        self._settle(snap, record, verdict, tokens, result)
        if mode is not cachemod.Mode.OFF and result.status == 200 and result.body is not None:
            self.cache.put(key, result.body, result.content_type, now)
            self.metrics.cache_size(snap.route, len(self.cache), self.cache.bytes)
        assert result.response is not None
        return result.response

    def _rate_limited(self, snap: ConfigSnapshot, verdict: Verdict, record: AnswerRecord) -> Refused:
        self.metrics.child(self.metrics.ratelimited, snap.route, record.tier).inc()
        kind = verdict.denied_kind()
        message = f"Rate limit reached for {kind} per minute on tier {record.tier}. Please try again later."
        return Refused(errors.error(429, message, kind, "rate_limit_exceeded", headers=verdict.headers()))

    def _cached(
        self, key: bytes, mode: cachemod.Mode, now: float, headers: dict[str, str], record: AnswerRecord
    ) -> web.Response | None:
        """The cached answer (a hit), or ``None`` (a miss); marks both in ``headers`` and ``record``."""
        entry = self.cache.get(key, now) if mode is cachemod.Mode.USE else None
        if entry is None:
            record.cache = "miss"
            headers[cachemod.HEADER] = "miss"
            return None
        record.cache = "hit"
        headers[cachemod.HEADER] = "hit"
        response = web.Response(body=entry.body, headers=headers)
        response.headers["Content-Type"] = entry.content_type
        return response

    def _shed(self, snap: ConfigSnapshot, verdict: Verdict, tokens: int, record: AnswerRecord) -> Refused:
        self.metrics.child(self.metrics.shed, snap.route, record.tier).inc()
        self.limiter.correct(verdict, -tokens)
        return Refused(errors.overloaded("The server is overloaded; please retry shortly."))

    def _settle(
        self, snap: ConfigSnapshot, record: AnswerRecord, verdict: Verdict, tokens: int, result: ForwardResult
    ) -> None:
        """Record where the answer came from; correct the token charge from the usage (refund on failure)."""
        record.upstream, record.code, record.ttfb = result.upstream, result.status, result.first_byte_at
        record.retries = result.retries
        usage = record.usage = result.usage
        if usage is not None:
            m = self.metrics
            m.child(m.tokens, snap.route, record.tier, "input").inc(usage.input)
            m.child(m.tokens, snap.route, record.tier, "output").inc(usage.output)
            self.limiter.correct(verdict, usage.total - tokens)
        elif result.status != 200:
            self.limiter.correct(verdict, -tokens)
