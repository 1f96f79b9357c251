"""A fake OpenAI-compatible upstream: a real HTTP server on loopback with scriptable behaviour.

Serves ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings`` and ``/v1/models``. Each request
takes the next :class:`FakeBehavior` from the script queue, or the default one: latency before the response,
status code, streaming shape (chunks, delay between them), failures (``reset`` aborts the connection,
``hang`` never answers, ``truncate`` cuts a stream half-way without ``[DONE]``, ``stall`` sends the first
``stall_after`` chunks of a stream and then nothing), and the shape of a 200 answer (``shape``:
``openai``; ``error_body``, an error object under status 200; ``partial``, a completion cut off
mid-generation (``finish_reason: null``); ``sse``, an event stream whatever the request asked;
``no_usage``, no ``usage`` anywhere; ``usage_every_chunk``, a stream whose every chunk carries
``usage: null`` as OpenAI's do once usage is asked for; ``echo``, the last message or prompt as the answer).
``auth`` makes it check the bearer key as a real provider does (401 for any other). It counts what it saw,
including requests whose client went away (``cancelled``), and records the last requests (body as read, and
raw) for assertions. ``duplicate_keys="first"`` reads a key given twice as parsers keeping the first do.

Two modes make it behave like a real backend under load. Engine mode (``engine=EngineModel(slots)``): at most
``slots`` requests run at once, the rest queue, each request's ``latency`` (time to first token) and
chunks run inside its slot, and ``GET /metrics`` serves vLLM-style gauges (queue, running, KV cache).
Hosted mode (``quota=HostedQuota(...)``): every answer carries ``x-ratelimit-*`` headers and a request past
the quota gets 429 with ``Retry-After`` (OpenAI's ``rate_limit_exceeded``), counted in ``ratelimited``.

In-process: ``await FakeUpstream().start()`` returns the base URL (``http://127.0.0.1:PORT/v1``).
As a process: ``python -m llmroute.testing.fake_upstream --port 0`` prints ``listening <url>`` on stdout;
``POST /_fake/behavior`` (``{"default": {...}, "script": [{...}]}``) and ``GET /_fake/stats`` script it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web

from llmroute.testing.fake_engine import EngineModel
from llmroute.testing.fake_quota import HostedQuota

Failure = Literal["none", "reset", "hang", "truncate", "stall"]
Shape = Literal["openai", "error_body", "partial", "sse", "no_usage", "usage_every_chunk", "echo"]


@dataclass
class FakeBehavior:
    """How the fake answers one request."""

    latency: float = 0.0
    status: int = 200
    fail: Failure = "none"
    chunks: int = 3
    chunk_delay: float = 0.0
    retry_after: float | None = None
    content: str = "ok"
    shape: Shape = "openai"
    stall_after: int = 1
    auth: str | None = None  # the only bearer key accepted (None: any)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FakeBehavior:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""


@dataclass
class Stats:
    received: int = 0
    served: int = 0
    active: int = 0
    cancelled: int = 0
    peak_active: int = 0
    ratelimited: int = 0
    models_requests: int = 0
    recent: deque[Recorded] = field(default_factory=lambda: deque(maxlen=1000))


class FakeUpstream:
    """The server; mutate ``default`` or :meth:`push` behaviours while it runs."""

    def __init__(
        self,
        name: str = "fake",
        behavior: FakeBehavior | None = None,
        record: bool = True,
        engine: EngineModel | None = None,
        quota: HostedQuota | None = None,
        duplicate_keys: Literal["last", "first"] = "last",
    ) -> None:
        self.name = name
        self.duplicate_keys = duplicate_keys
        self.engine = engine
        self.quota = quota
        self.default = behavior or FakeBehavior()
        self.script: deque[FakeBehavior] = deque()
        self.stats = Stats()
        self.record = record
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()

    @property
    def connections(self) -> int:
        """TCP connections currently open to this server (to check that clients do not leak them)."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    def push(self, *behaviors: FakeBehavior) -> None:
        self.script.extend(behaviors)

    def app(self) -> web.Application:
        app = web.Application()
        for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
            app.router.add_post(path, self._handle)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/_fake/behavior", self._set_behavior)
        app.router.add_get("/_fake/stats", self._get_stats)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=4096)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self.url = f"http://{host}:{bound}/v1"
        return self.url

    async def stop(self) -> None:
        self._stop.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _models(self, request: web.Request) -> web.Response:
        self.stats.models_requests += 1
        if self.default.status >= 400:  # a broken upstream is broken for health probes too
            error = {"error": {"message": "scripted failure", "type": "server_error", "code": None}}
            return web.json_response(error, status=self.default.status)
        data = {"object": "list", "data": [{"id": self.name, "object": "model", "owned_by": "fake"}]}
        return web.json_response(data)

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.engine is None:
            raise web.HTTPNotFound()
        return web.Response(text=self.engine.metrics_text(), content_type="text/plain")

    async def _set_behavior(self, request: web.Request) -> web.Response:
        data = await request.json()
        if "default" in data:
            self.default = FakeBehavior.from_dict(data["default"])
        self.script.extend(FakeBehavior.from_dict(b) for b in data.get("script", []))
        return web.json_response({"ok": True})

    async def _get_stats(self, request: web.Request) -> web.Response:
        s = self.stats
        return web.json_response(
            {
                k: getattr(s, k)
                for k in ("received", "served", "active", "cancelled", "peak_active", "ratelimited")
            }
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.received += 1
        stats.active += 1
        stats.peak_active = max(stats.peak_active, stats.active)
        behavior = self.script.popleft() if self.script else self.default
        try:
            raw = await request.read()
            body: dict[str, Any] = self._read(raw) if raw else {}
            if self.record:
                stats.recent.append(Recorded(request.path, dict(request.headers), body, raw))
            headers: dict[str, str] = {}
            if self.quota is not None:
                admitted, headers = self.quota.charge(_cost(body, len(raw), behavior.chunks))
                if not admitted:
                    stats.ratelimited += 1
                    return _rate_limited(headers)
            if self.engine is None:
                response = await self._run(request, behavior, body, len(raw), headers)
            else:
                async with self.engine.slot():
                    response = await self._run(request, behavior, body, len(raw), headers)
            stats.served += 1
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            stats.cancelled += 1
            raise
        finally:
            stats.active -= 1

    def _read(self, raw: bytes) -> Any:
        if self.duplicate_keys == "last":
            return orjson.loads(raw)
        return json.loads(raw, object_pairs_hook=lambda pairs: dict(reversed(pairs)))  # first one wins

    async def _run(
        self, request: web.Request, b: FakeBehavior, body: dict[str, Any], size: int, headers: dict[str, str]
    ) -> web.StreamResponse:
        if b.latency:
            await asyncio.sleep(b.latency)
        return await self._respond(request, b, body, size, headers)

    async def _respond(
        self, request: web.Request, b: FakeBehavior, body: dict[str, Any], size: int, headers: dict[str, str]
    ) -> web.StreamResponse:
        if b.fail == "reset":
            _reset(request)
            raise ConnectionResetError("fake reset")
        if b.fail == "hang":
            await self._stop.wait()
            raise ConnectionResetError("fake stopped")
        if b.auth is not None and request.headers.get("Authorization") != f"Bearer {b.auth}":
            error = {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                     "param": None, "code": "invalid_api_key"}  # fmt: skip
            return web.json_response({"error": error}, status=401)
        if b.status != 200 or b.shape == "error_body":
            if b.retry_after is not None:
                headers = {**headers, "Retry-After": str(b.retry_after)}
            error = {"message": f"fake error {b.status}", "type": "server_error", "param": None, "code": None}
            return web.json_response({"error": error}, status=b.status, headers=headers)
        model = str(body.get("model", self.name))
        prompt_tokens = _prompt_tokens(body)
        if request.path.endswith("/embeddings"):
            usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
            data = [{"object": "embedding", "index": 0, "embedding": [0.0, 0.1, 0.2]}]
            return _json({"object": "list", "data": data, "model": model, "usage": usage}, headers)
        chat = request.path.endswith("/chat/completions")
        if body.get("stream") is True or b.shape == "sse":
            return await self._stream(request, b, model, chat, prompt_tokens, body, headers)
        usage = _usage(prompt_tokens, b.chunks)
        finish = None if b.shape == "partial" else "stop"
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        text = _echo(body) if b.shape == "echo" else b.content * max(1, b.chunks)
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        obj = "chat.completion" if chat else "text_completion"
        answer = {"id": "fake-1", "object": obj, "created": int(time.time()), "model": model,
                  "choices": [choice], "usage": usage, "upstream": self.name}  # fmt: skip
        if b.shape == "no_usage":
            del answer["usage"]
        return _json(answer, headers)

    async def _stream(
        self,
        request: web.Request,
        b: FakeBehavior,
        model: str,
        chat: bool,
        prompt: int,
        body: dict[str, Any],
        headers: dict[str, str],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **headers}
        )
        await response.prepare(request)
        obj = "chat.completion.chunk" if chat else "text_completion"
        stop_at = b.chunks // 2 if b.fail == "truncate" else None
        wants_usage = (body.get("stream_options") or {}).get("include_usage") and b.shape != "no_usage"
        for i in range(b.chunks + 1):
            if stop_at is not None and i == stop_at:
                _reset(request)
                raise ConnectionResetError("fake truncate")
            if b.fail == "stall" and i == b.stall_after:
                await self._stop.wait()
                raise ConnectionResetError("fake stopped")
            last = i == b.chunks
            piece: dict[str, Any] = {"index": 0, "finish_reason": "stop" if last else None}
            text = "" if last else b.content
            if chat:
                piece["delta"] = {} if last else {"content": text}
            else:
                piece["text"] = text
            chunk = {"id": "fake-1", "object": obj, "created": 0, "model": model, "choices": [piece]}
            if wants_usage or b.shape == "usage_every_chunk":
                chunk["usage"] = None
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            if b.chunk_delay and not last:
                await asyncio.sleep(b.chunk_delay)
        if wants_usage:
            chunk = {"id": "fake-1", "object": obj, "created": 0, "model": model, "choices": [],
                     "usage": _usage(prompt, b.chunks)}  # fmt: skip
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _prompt_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens as a provider counts them: from the prompt itself (a quarter of its JSON's bytes),
    not from the rest of the request."""
    prompt = body.get("messages", body.get("prompt", body.get("input", "")))
    return max(1, len(orjson.dumps(prompt)) // 4)


def _echo(body: dict[str, Any]) -> str:
    """The content of the request's last message, or its prompt (``shape="echo"``)."""
    messages = body.get("messages") or [{"content": body.get("prompt")}]
    return str(messages[-1].get("content"))


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _json(data: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json", headers=headers)


def _cost(body: dict[str, Any], size: int, chunks: int) -> float:
    """Tokens a provider charges on arrival: the prompt (a quarter of the body's bytes) plus the most the
    request may generate (``max_tokens``, else the scripted ``chunks``)."""
    most = body.get("max_completion_tokens") or body.get("max_tokens") or chunks
    return float(max(1, size // 4) + (most if isinstance(most, int) else chunks))


def _rate_limited(headers: dict[str, str]) -> web.Response:
    message = "Rate limit reached for requests. Please try again later."
    error = {"message": message, "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    return web.json_response({"error": error}, status=429, headers=headers)


def _reset(request: web.Request) -> None:
    """Abort the connection with a TCP RST (linger 0), as a crashing server would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _serve(args: argparse.Namespace) -> None:
    behavior = FakeBehavior(latency=args.latency, chunks=args.chunks, chunk_delay=args.chunk_delay)
    engine = EngineModel(args.slots, args.engine, args.name) if args.slots else None
    quota = None
    if args.quota_requests or args.quota_tokens:
        big = 10**12  # a dimension left out is unlimited
        quota = HostedQuota(
            args.quota_requests or big, args.quota_tokens or big, args.quota_window, args.header_style
        )
    fake = FakeUpstream(args.name, behavior, record=False, engine=engine, quota=quota)
    url = await fake.start(args.host, args.port)
    print(f"listening {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="fake OpenAI-compatible upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="fake")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--slots", type=int, default=0, help="engine mode: concurrent requests (0: off)")
    parser.add_argument("--engine", choices=["vLLM", "SGLang", "TGI"], default="vLLM")
    parser.add_argument("--quota-requests", type=int, default=0, help="hosted mode: requests per window")
    parser.add_argument("--quota-tokens", type=int, default=0, help="hosted mode: tokens per window")
    parser.add_argument("--quota-window", type=float, default=60.0, help="hosted mode: window, seconds")
    parser.add_argument("--header-style", choices=["openai", "azure"], default="openai")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(_serve(args))


if __name__ == "__main__":
    main()
