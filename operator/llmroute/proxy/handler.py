"""The request path of ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``.

authenticate (401) → read the body (:mod:`~llmroute.proxy.body`: 413 too large, 400 unreadable, 408 too
slow) → parse: JSON and the fields llmroute acts on (400, naming ``param``),
model (404) → the body to send upstream, the parsed payload written anew (:func:`outgoing`) → rate limits
(429) → cache (a hit answers here) → priority admission (503 when shed) → forward upstream with failover
→ settle. A step that ends the request early raises :class:`Refused` with its answer. Whatever the ending
(a client that leaves is recorded with code 499), :meth:`ApiHandler.settle` runs exactly once: it charges
the caller's limits what the request actually used, records the metrics (``llmroute_requests_total``,
``llmroute_request_duration_seconds``, ``llmroute_tokens_total``) with the upstream really tried, and hands
the :class:`Outcome` to the observers (e.g. an access log).

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
from llmroute.proxy.accesslog import AccessLogWriter
from llmroute.proxy.admission import PriorityGate
from llmroute.proxy.body import read_body
from llmroute.proxy.cache import ResponseCache
from llmroute.proxy.errors import Refused
from llmroute.proxy.forward import CLIENT_GONE, Call, Forwarder
from llmroute.proxy.identity import Caller, Unauthorized, presented_key, resolve
from llmroute.proxy.inputs import check_input
from llmroute.proxy.limits import Verdict
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.outcome import REPORTED, Outcome, Progress, consumed, refunds_request
from llmroute.proxy.params import Params, check
from llmroute.proxy.ratelimit import RateLimiter
from llmroute.proxy.requestid import HEADER as REQUEST_ID
from llmroute.proxy.requestid import request_id
from llmroute.proxy.snapshot import ConfigSnapshot
from llmroute.proxy.tokens import ask_for_usage, estimate, prompt_estimate
from llmroute.spec.proxyconfig import UpstreamConfig

log = logging.getLogger("llmroute.proxy")


def authenticate(snap: ConfigSnapshot, headers: CIMultiDictProxy[str]) -> Caller:
    """The caller, as the route's ``limits`` identify it; raises :class:`Refused` (401) otherwise."""
    try:
        return resolve(snap, headers)
    except Unauthorized as exc:
        raise Refused(errors.unauthorized(str(exc)), "invalid_api_key") from None


def parse(
    snap: ConfigSnapshot, path: str, body: bytes
) -> tuple[dict[str, Any], Params, list[UpstreamConfig]]:
    """The JSON object, the fields llmroute acts on and the upstreams serving its ``model``; raises
    :class:`Refused` (400, 404)."""
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        message = "We could not parse the JSON body of your request."
        raise Refused(errors.bad_request(message), "invalid_json") from None
    if not isinstance(payload, dict):
        raise Refused(errors.bad_request("The request body must be a JSON object."), "invalid_json")
    params = check(payload)
    candidates = snap.by_model.get(params.model)
    if candidates is None:
        message = f"The model `{params.model}` does not exist."
        raise Refused(errors.not_found(message, "model_not_found"), "model_not_found")
    check_input(path, payload)
    return payload, params, candidates


def outgoing(payload: dict[str, Any], params: Params) -> tuple[dict[str, Any], bytes, bool]:
    """The payload to send upstream, its bytes and whether the client's stream must be stripped of the
    usage event llmroute asked for (:func:`ask_for_usage`); raises :class:`Refused` (400) for a body nested
    deeper than orjson writes (254 levels).

    The bytes are always the payload as llmroute parsed it, written anew by ``orjson.dumps`` — never the
    client's bytes: a body that another JSON parser reads differently (a key given twice, of which orjson
    keeps the last and other parsers the first; escapes in keys; number spellings) would otherwise run
    upstream as another request than the one llmroute routed, limited, charged and cached."""
    sent, strip = ask_for_usage(payload, params)
    try:
        return sent, orjson.dumps(sent), strip
    except orjson.JSONEncodeError:  # the only payload orjson parses but cannot write: one nested too deep
        message = "The JSON body of your request is nested too deeply."
        raise Refused(errors.bad_request(message), "invalid_json") from None


def queue_wait(snap: ConfigSnapshot, caller: Caller) -> float | None:
    """Seconds the caller may wait for an admission slot (``None``: as long as it takes, for a tier
    that is not sheddable)."""
    tier = caller.tier
    return None if tier is not None and not tier.sheddable else snap.config.admission.queue_timeout_seconds


def client_auth(snap: ConfigSnapshot, headers: CIMultiDictProxy[str]) -> str | None:
    """The client's own key to send upstream: only on a route that does not verify keys itself (a route
    with API-key tiers uses its upstreams' keys)."""
    limits = snap.config.limits
    if limits.tiers and limits.identity == "ApiKey":
        return None
    key = presented_key(headers)
    return f"Bearer {key}" if key else None


class ApiHandler:
    """Serves the LLM API paths with the collaborators it is given.

    ``current()`` returns the snapshot to serve with, or ``None`` before the first valid config (the
    request is then answered 503); ``draining()`` says the proxy is stopping: requests that still reach
    it are served and their connection closed, so clients move to the replicas that stay; the others are
    the long-lived parts of the proxy the path uses. ``observers`` are called with every request's
    :class:`Outcome` (they must not block or raise).
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
        self.observers: list[Callable[[Outcome], None]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        rid = request_id(request.headers)
        snap = self.current()
        if snap is None:
            unready = errors.overloaded("the proxy has no valid config to serve yet")
            unready.headers[REQUEST_ID] = rid
            return unready
        inflight = self.metrics.child(self.metrics.inflight, snap.route)
        inflight.inc()
        progress = Progress(rid, time.perf_counter(), request.path)
        response: web.StreamResponse | None = None
        try:
            response = await self._serve(request, snap, progress)
        except Refused as refused:
            progress.error = refused.error
            response = refused.response
        except Exception:  # a bug must not turn into a non-OpenAI error page or a dropped connection
            log.exception("request %s: unexpected error serving %s", rid, request.path)
            progress.status, progress.error = 500, "internal_error"
            response = errors.error(500, "internal error in the proxy", "server_error", "internal_error")
        finally:
            if response is not None and self.draining():
                response.force_close()  # served by a stopping proxy: the client reconnects to one that stays
            inflight.dec()
            self.settle(snap, progress, response)
        if not response.prepared:  # a stream was sent with the id already
            response.headers[REQUEST_ID] = rid
        return response

    async def _serve(self, request: web.Request, snap: ConfigSnapshot, p: Progress) -> web.StreamResponse:
        caller = authenticate(snap, request.headers)
        p.tier, p.client = caller.tier_label, caller.client
        timeouts = snap.config.timeouts
        body = await read_body(
            request, snap.config.max_body_bytes, timeouts.idle_seconds, timeouts.total_seconds
        )
        p.request_bytes = len(body)
        payload, params, candidates = parse(snap, request.path, body)
        sent, sent_body, strip = outgoing(payload, params)
        path = request.path
        p.stream, p.model = params.stream, params.model
        tokens = estimate(path, len(sent_body), params)
        now = time.monotonic()
        verdict = await self.limiter.admit(snap, caller, tokens, now)
        if not verdict.allowed:
            raise self._rate_limited(snap, verdict, p.tier)
        p.verdict, p.charged, p.prompt_estimate = verdict, tokens, prompt_estimate(len(sent_body))
        headers = verdict.headers()
        headers[REQUEST_ID] = p.request_id
        cfg = snap.config.cache
        mode = cachemod.mode(cfg, path, params, caller, request.headers)
        key = b""
        if mode is not cachemod.Mode.OFF:
            key = cachemod.cache_key(cachemod.scope(cfg, caller), path, payload)
            if (hit := self._cached(key, mode, now, headers, p)) is not None:
                return hit
        if not await self.gate.acquire(caller.priority, queue_wait(snap, caller)):
            raise self._shed(snap, p.tier)
        auth = client_auth(snap, request.headers)
        call = Call(path, sent_body, sent, params.stream, asyncio.get_running_loop().time(),
                    p.prompt_estimate, auth, headers, p, strip)  # fmt: skip
        try:
            result = await self.forwarder.forward(request, snap, candidates, call)
        finally:
            self.gate.release()
        p.status, p.usage = result.status, result.usage
        if (
            mode is not cachemod.Mode.OFF
            and result.status == 200
            and result.body is not None
            and cachemod.storable(path, result.body, result.content_type)
        ):
            self.cache.put(key, result.body, result.content_type, now)
            self.metrics.cache_size(snap.route, len(self.cache), self.cache.bytes)
        assert result.response is not None
        return result.response

    def _rate_limited(self, snap: ConfigSnapshot, verdict: Verdict, tier: str) -> Refused:
        self.metrics.child(self.metrics.ratelimited, snap.route, tier).inc()
        kind = verdict.denied_kind()
        wait = verdict.headers().get("Retry-After", "1")
        message = f"Rate limit reached for {kind} per minute on tier {tier}. Please try again in {wait}s."
        response = errors.error(429, message, kind, "rate_limit_exceeded", headers=verdict.headers())
        return Refused(response, "rate_limit_exceeded")

    def _cached(
        self, key: bytes, mode: cachemod.Mode, now: float, headers: dict[str, str], p: Progress
    ) -> web.Response | None:
        """The cached answer (a hit), or ``None`` (a miss); marks both in ``headers`` and ``p``."""
        entry = self.cache.get(key, now) if mode is cachemod.Mode.USE else None
        if entry is None:
            p.cache = "miss"
            headers[cachemod.HEADER] = "miss"
            return None
        p.cache = "hit"
        headers[cachemod.HEADER] = "hit"
        response = web.Response(body=entry.body, headers=headers)
        response.headers["Content-Type"] = entry.content_type
        return response

    def _shed(self, snap: ConfigSnapshot, tier: str) -> Refused:
        self.metrics.child(self.metrics.shed, snap.route, tier).inc()
        return Refused(errors.overloaded("The server is overloaded; please retry shortly."), "overloaded")

    def settle(
        self, snap: ConfigSnapshot, p: Progress, response: web.StreamResponse | None
    ) -> Outcome | None:
        """End the request's accounting, whatever its ending (``response`` is ``None`` when the client
        left): charge its limits what it used (and give back a request llmroute ended before any upstream
        received it), record the metrics, tell the observers. The :class:`Outcome` (made only when there
        are observers). Never raises, never awaits."""
        duration = time.perf_counter() - p.started
        status = p.status or (response.status if response is not None else CLIENT_GONE)
        error = p.error if p.error is not None or status < 400 else _error(status, p)
        usage, source = (p.usage, REPORTED) if p.usage is not None else consumed(p)
        verdict = p.verdict
        if verdict is not None:
            if refunds_request(p):
                self.limiter.correct(verdict, -p.charged, -1.0)
            else:
                self.limiter.correct(verdict, usage.total - p.charged)
        ttfb = p.first_byte_at - p.started if p.first_byte_at is not None else duration
        m = self.metrics
        m.answered(snap.route, p.tier, p.upstream, status, p.cache, duration, ttfb)
        if usage.input:
            m.child(m.tokens, snap.route, p.tier, "input").inc(usage.input)
        if usage.output:
            m.child(m.tokens, snap.route, p.tier, "output").inc(usage.output)
        log = self.access_log
        if log is not None and log.enabled and log.sampled():
            sent = p.first_byte_at is not None or status != CLIENT_GONE
            log.write((time.time(), p.request_id, snap.route, p.tier, p.client, p.path, p.model, p.stream,
                       status, error, *((usage.input, usage.output) if source != "none" else (None, None)),
                       p.request_bytes, duration,
                       ttfb if sent else None, p.cache, p.upstream, max(0, p.attempts - 1)))  # fmt: skip
        if not self.observers:
            return None
        outcome = Outcome(p.request_id, snap.route, p.tier, status, error, p.upstream, p.attempts, p.cache,
                          p.stream, usage.input, usage.output, source, duration, ttfb)  # fmt: skip
        for observer in self.observers:
            observer(outcome)
        return outcome


def _error(status: int, p: Progress) -> str | None:
    """The error code of an ending no step named: ``None`` for a success."""
    if status < 400:
        return None
    if status == CLIENT_GONE:
        return "client_closed"
    if status == 504:
        return "timeout"
    return "upstream_error" if p.attempts else "server_error"
