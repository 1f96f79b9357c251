"""The request pipeline of ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``.

identity (401) → body size (413) and JSON (400) → model (404) → rate limits (429) → cache (hit answers
here) → priority admission (503 when shed) → upstream with failover. Every exit is counted once in
``llmroute_requests_total`` and ``llmroute_request_duration_seconds``; a client that leaves is counted
with code 499.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from llmroute.proxy import cache as cachemod
from llmroute.proxy import errors
from llmroute.proxy.forward import CLIENT_GONE, Call
from llmroute.proxy.identity import Identity, Unauthorized, presented_key, resolve
from llmroute.proxy.limits import ALLOW_ALL, Verdict, build_checks
from llmroute.proxy.runtime import Runtime
from llmroute.proxy.tokens import estimate

if TYPE_CHECKING:
    from llmroute.proxy.app import Proxy

log = logging.getLogger("llmroute.proxy")


class Ctx:
    """Labels of the answer, filled in as the pipeline goes."""

    __slots__ = ("cache", "code", "tier", "ttfb", "upstream")

    def __init__(self) -> None:
        self.tier = "none"
        self.upstream = "none"
        self.code = 0
        self.cache = "bypass"
        self.ttfb: float | None = None


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or ``None`` if it exceeds ``limit`` bytes (checked before reading when possible)."""
    length = request.content_length
    if length is not None and length > limit:
        return None
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class ApiHandler:
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self._background: set[asyncio.Task[None]] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        proxy = self.proxy
        rt = proxy.runtime
        if rt is None:
            return errors.overloaded("the proxy has no valid config to serve yet")
        start = asyncio.get_running_loop().time()
        t0 = time.perf_counter()
        metrics = proxy.metrics
        inflight = metrics.child(metrics.inflight, rt.route)
        inflight.inc()
        ctx = Ctx()
        response: web.StreamResponse | None = None
        try:
            response = await self._serve(request, rt, ctx, start)
            if proxy.draining:  # serve what still reaches a stopping proxy, then close its connection
                response.force_close()
            return response
        except Exception:  # a bug must not turn into a non-OpenAI error page or a dropped connection
            log.exception("unexpected error serving %s", request.path)
            ctx.code = 500
            response = errors.error(500, "internal error in the proxy", "server_error", "internal_error")
            return response
        finally:
            inflight.dec()
            duration = time.perf_counter() - t0
            ttfb = ctx.ttfb - t0 if ctx.ttfb is not None else duration
            code = ctx.code or (response.status if response is not None else CLIENT_GONE)
            metrics.answered(rt.route, ctx.tier, ctx.upstream, code, ctx.cache, duration, ttfb)

    async def _serve(self, request: web.Request, rt: Runtime, ctx: Ctx, start: float) -> web.StreamResponse:
        proxy = self.proxy
        cfg = rt.config
        try:
            ident = resolve(rt, request.headers)
        except Unauthorized as exc:
            return errors.unauthorized(str(exc))
        ctx.tier = ident.tier_label
        body = await read_body(request, cfg.max_body_bytes)
        if body is None:
            return errors.too_large(cfg.max_body_bytes)
        try:
            payload: Any = orjson.loads(body)
        except orjson.JSONDecodeError:
            return errors.bad_request("We could not parse the JSON body of your request.")
        if not isinstance(payload, dict):
            return errors.bad_request("The request body must be a JSON object.")
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            return errors.bad_request("you must provide a model parameter", param="model")
        candidates = rt.by_model.get(model)
        if candidates is None:
            return errors.not_found(f"The model `{model}` does not exist.", "model_not_found")
        stream = payload.get("stream") is True
        path = request.path
        tokens = estimate(path, len(body), payload)
        now = time.monotonic()
        verdict = await self._admit(rt, ident, tokens, now)
        if not verdict.allowed:
            proxy.metrics.child(proxy.metrics.ratelimited, rt.route, ctx.tier).inc()
            kind = verdict.denied_kind()
            return errors.error(
                429,
                f"Rate limit reached for {kind} per minute on tier {ctx.tier}. Please try again later.",
                kind,
                "rate_limit_exceeded",
                headers=verdict.headers(),
            )
        headers = verdict.headers()
        mode = cachemod.mode(cfg.cache, path, payload, request.headers)
        key = b""
        if mode is not cachemod.Mode.OFF:
            key = cachemod.cache_key(path, payload)
            entry = proxy.cache.get(key, now) if mode is cachemod.Mode.USE else None
            if entry is not None:
                ctx.cache = "hit"
                self._correct(rt, verdict, -tokens)
                headers[cachemod.HEADER] = "hit"
                response = web.Response(body=entry.body, headers=headers)
                response.headers["Content-Type"] = entry.content_type
                return response
            ctx.cache = "miss"
            headers[cachemod.HEADER] = "miss"
        tier = ident.tier
        wait = None if tier is not None and not tier.sheddable else cfg.admission.queue_timeout_seconds
        if not await proxy.gate.acquire(ident.priority, wait):
            proxy.metrics.child(proxy.metrics.shed, rt.route, ctx.tier).inc()
            self._correct(rt, verdict, -tokens)
            return errors.overloaded("The server is overloaded; please retry shortly.")
        client_auth = None
        if not cfg.limits.tiers or cfg.limits.identity == "Header":
            key_value = presented_key(request.headers)
            client_auth = f"Bearer {key_value}" if key_value else None
        call = Call(path, body, payload, stream, start, len(body) // 4 + 1, client_auth, headers)
        try:
            outcome = await proxy.forwarder.forward(request, rt, candidates, call)
        finally:
            proxy.gate.release()
        ctx.upstream, ctx.code, ctx.ttfb = outcome.upstream, outcome.status, outcome.first_byte_at
        usage = outcome.usage
        if usage is not None:
            metrics = proxy.metrics
            metrics.child(metrics.tokens, rt.route, ctx.tier, "input").inc(usage.input)
            metrics.child(metrics.tokens, rt.route, ctx.tier, "output").inc(usage.output)
            self._correct(rt, verdict, usage.total - tokens)
        elif outcome.status != 200:
            self._correct(rt, verdict, -tokens)
        if mode is not cachemod.Mode.OFF and outcome.status == 200 and outcome.body is not None:
            proxy.cache.put(key, outcome.body, outcome.content_type, now)
            proxy.cache_metrics(rt.route)
        assert outcome.response is not None
        return outcome.response

    async def _admit(self, rt: Runtime, ident: Identity, tokens: int, now: float) -> Verdict:
        tier = ident.tier
        if tier is None:
            return ALLOW_ALL
        divisor = rt.config.limits.divisor
        shared = self.proxy.shared
        if shared is not None and shared.available(now):
            verdict = await shared.admit(build_checks(tier, ident.client, tokens, True, divisor), now)
            if verdict is not None:
                return verdict
        return self.proxy.local.admit(build_checks(tier, ident.client, tokens, False, divisor), now)

    def _correct(self, rt: Runtime, verdict: Verdict, delta: float) -> None:
        if not verdict.checks or delta == 0:
            return
        now = time.monotonic()
        shared = self.proxy.shared
        if verdict.shared and shared is not None:
            task = asyncio.get_running_loop().create_task(shared.correct(verdict.checks, delta, now))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            self.proxy.local.correct(verdict.checks, delta, now)
