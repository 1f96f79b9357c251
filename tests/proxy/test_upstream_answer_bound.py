"""A non-streamed upstream answer is read up to ``forward.MAX_BODY`` bytes and no further: an upstream that
sends more — an endless body, or a ``Content-Length`` past the bound — is cut off there, its connection
closed, and the client (the official ``openai`` SDK) gets ``502 upstream_error`` naming the bound, counted
as a broken upstream. Before, the proxy buffered whatever came until its pod ran out of memory.

The misbehaving upstream stops by itself after :data:`CAP` bytes (then holds the connection open), so that
the same tests on a proxy without the bound end in a timeout instead of filling this machine's memory."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from aiohttp import web

from llmroute.proxy import forward
from llmroute.proxy.outcome import Outcome
from llmroute.testing.fake_upstream import FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, eventually, metric, tier, upstream

BOUND = 64 * 1024
CAP = 32 * 1024 * 1024  # what the upstream sends at most, far past the bound and any socket buffers
PIECE = 16 * 1024
UPSTREAM_KEY = "sk-proj-UpStReAmKeY0123456789abcdef"
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
FAST = {"connectSeconds": 1, "firstByteSeconds": 2, "totalSeconds": 4}
ATTEMPTS = "llmroute_proxy_upstream_attempts_total"


def completion(size: int) -> bytes:
    """A chat completion of exactly ``size`` bytes (padded with whitespace, still valid JSON)."""
    answer = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip
    raw = json.dumps(answer).encode()
    assert len(raw) < size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


class Oversized:
    """An upstream on loopback whose answers (to ``POST /v1/chat/completions`` and ``GET /v1/models``) are:
    ``endless``, a chunked body of ``status`` that goes on until the connection is closed (or :data:`CAP`
    bytes); ``declared``, headers with a ``Content-Length`` of ``declared`` and then one small piece, the
    rest never sent; ``exact``, ``body`` in pieces, chunked or with its ``Content-Length``. Counts the bytes
    it sent (``sent``) and whether the other side closed the connection under it (``cut``)."""

    def __init__(self) -> None:
        self.mode = "endless"
        self.status = 200
        self.declared = 10**12
        self.body = b""
        self.chunked = True
        self.sent = 0
        self.cut = False
        self.url = ""
        self.release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def connections(self) -> int:
        """Connections still open (a closed one stays listed until its handler returns)."""
        server = self._runner.server if self._runner is not None else None
        return sum(c.transport is not None for c in server.connections) if server is not None else 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        app.router.add_get("/v1/models", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1"

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        headers = {"Content-Type": "application/json"}
        response = web.StreamResponse(status=self.status, headers=headers)
        if self.mode == "declared":
            response.content_length = self.declared
        elif self.mode == "exact" and not self.chunked:
            response.content_length = len(self.body)
        await response.prepare(request)
        try:
            if self.mode == "endless":
                while self.sent < CAP:
                    await self._write(response, b" " * PIECE)
            elif self.mode == "declared":
                await self._write(response, b'{"id": "c1"')
            else:
                for at in range(0, len(self.body), PIECE):
                    await self._write(response, self.body[at : at + PIECE])
                await response.write_eof()
                return response
        except ConnectionError:  # reset, or lost while the write waited for room
            self.cut = True
            return response
        await self.release.wait()  # hold the connection: the client must not wait for the rest
        return response

    async def _write(self, response: web.StreamResponse, piece: bytes) -> None:
        await response.write(piece)
        self.sent += len(piece)


@pytest.fixture
async def oversized() -> AsyncIterator[Oversized]:
    up = Oversized()
    await up.start()
    try:
        yield up
    finally:
        await up.stop()


@pytest.fixture
def bound(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(forward, "MAX_BODY", BOUND, raising=False)  # not raising: run on a proxy without it
    return BOUND


async def keyed(harness: Harness, url: str, **kw: Any) -> openai.AsyncOpenAI:
    """A route that sends the upstream llmroute's own key, no retries; its client (the SDK)."""
    keys, upstream_key = harness.dir / "keys", harness.dir / "upstream-key"
    keys.write_text("sk-client\n")
    upstream_key.write_text(UPSTREAM_KEY)
    limits = {"tiers": [tier("team", apiKeysFile=str(keys))]}
    cfg = config(upstream(url, apiKeyFile=str(upstream_key)), limits=limits, timeouts=FAST,
                 passiveHealth={"retries": 0}, **kw)  # fmt: skip
    await harness.start(cfg)
    return openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-client", max_retries=0, timeout=15)


async def refused(client: openai.AsyncOpenAI) -> openai.APIStatusError:
    async with client:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="m", messages=MESSAGES)
    return info.value


def expect_bound_error(error: openai.APIStatusError, limit: int) -> None:
    assert error.status_code == 502 and error.code == "upstream_error", error.response.text
    message = f"upstream answer exceeded {limit} bytes"
    assert json.loads(error.response.text) == {
        "error": {"message": message, "type": "server_error", "param": None, "code": "upstream_error"}
    }
    assert UPSTREAM_KEY not in error.response.text and "UpStReAm" not in str(error.response.headers)


def outcomes(harness: Harness) -> list[Outcome]:
    assert harness.server is not None and harness.server.proxy.api is not None
    seen: list[Outcome] = []
    harness.server.proxy.api.observers.append(seen.append)
    return seen


async def test_an_endless_answer_is_cut_off_at_the_bound(
    harness: Harness, oversized: Oversized, bound: int, caplog: pytest.LogCaptureFixture
) -> None:
    client = await keyed(harness, oversized.url)
    seen = outcomes(harness)
    error = await refused(client)
    expect_bound_error(error, bound)
    # the proxy stopped reading and closed the connection, long before the upstream would have stopped
    await eventually(lambda: oversized.cut and oversized.connections == 0)
    assert oversized.sent < CAP
    metrics = await harness.metrics()
    assert metric(metrics, "llmroute_requests_total", code="502", upstream="a") == 1
    assert metric(metrics, "llmroute_inflight_requests") == 0
    assert metric(metrics, ATTEMPTS, upstream="a", outcome="error") == 1  # as the operator's queries read
    assert harness.server is not None and harness.server.proxy.balancer.state("a").failures == 1
    await eventually(lambda: len(seen) == 1)
    assert (seen[0].status, seen[0].error, seen[0].upstream) == (502, "upstream_error", "a")
    assert not any(UPSTREAM_KEY in r.getMessage() for r in caplog.records)


async def test_a_content_length_over_the_bound_is_refused_without_reading(
    harness: Harness, oversized: Oversized, bound: int
) -> None:
    """The upstream declares more than the bound and sends only a first piece: the proxy answers at
    once, without waiting for a body it would refuse, and drops the connection."""
    oversized.mode = "declared"
    client = await keyed(harness, oversized.url)
    expect_bound_error(await refused(client), bound)
    await eventually(lambda: oversized.connections == 0)
    metrics = await harness.metrics()
    assert metric(metrics, "llmroute_requests_total", code="502") == 1
    assert metric(metrics, ATTEMPTS, upstream="a", outcome="error") == 1
    assert metric(metrics, "llmroute_inflight_requests") == 0


@pytest.mark.parametrize("chunked", [pytest.param(True, id="chunked"), pytest.param(False, id="length")])
async def test_an_answer_of_the_bound_passes_byte_for_byte_and_one_byte_more_does_not(
    harness: Harness, oversized: Oversized, bound: int, chunked: bool
) -> None:
    oversized.mode, oversized.chunked = "exact", chunked
    oversized.body = completion(bound)
    await harness.start(config(upstream(oversized.url), timeouts=FAST, passiveHealth={"retries": 0}))
    payload = {"model": "m", "messages": MESSAGES}
    async with harness.session.post(harness.url + "/v1/chat/completions", json=payload) as resp:
        assert resp.status == 200 and await resp.read() == oversized.body
    oversized.body = completion(bound + 1)
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-x", max_retries=0, timeout=15)
    expect_bound_error(await refused(client), bound)
    metrics = await harness.metrics()
    assert metric(metrics, "llmroute_requests_total", code="200") == 1
    assert metric(metrics, "llmroute_requests_total", code="502") == 1
    assert metric(metrics, "llmroute_inflight_requests") == 0


async def test_an_endless_error_body_to_retry_is_not_read_to_its_end(
    harness: Harness, oversized: Oversized, fake_b: FakeUpstream
) -> None:
    """A 503 is read away before the next upstream is tried, to keep its connection: at most
    ``MAX_DRAIN`` bytes of it, then the connection is closed and the request goes on."""
    oversized.status = 503
    ups = [upstream(oversized.url, name="a", group=0), upstream(fake_b.url, name="b", group=1)]
    await harness.start(config(*ups, timeouts=FAST))
    status, _, body = await harness.chat()
    assert status == 200 and body["upstream"] == "b"
    await eventually(lambda: oversized.cut and oversized.connections == 0)
    assert oversized.sent < CAP
    metrics = await harness.metrics()
    assert metric(metrics, ATTEMPTS, upstream="a", outcome="status_503") == 1
    assert metric(metrics, "llmroute_inflight_requests") == 0


async def test_a_probe_reads_no_endless_model_list(
    harness: Harness, oversized: Oversized, fake_b: FakeUpstream
) -> None:
    """A probe needs the status only: an endless ``/models`` answer is left unread, its connection
    closed, and the probe counts the upstream up."""
    ups = [upstream(oversized.url, name="primary", group=0), upstream(fake_b.url, name="backup", group=1)]
    await harness.start(
        config(*ups, activeGroup=1, timeouts=FAST, passiveHealth={"probeIntervalSeconds": 0.2})
    )

    async def probed_ok() -> bool:
        text = await harness.metrics()
        return metric(text, "llmroute_proxy_upstream_probes_total", upstream="primary", outcome="ok") >= 1

    await eventually(probed_ok)
    await eventually(lambda: oversized.cut)
    assert oversized.sent < CAP


def test_the_bound_is_above_the_largest_real_answer() -> None:
    """Embeddings of 2,048 inputs of 3,072 floats, as OpenAI writes them (about 75 MB), fit."""
    largest = 2048 * 3072 * len("-0.012345678,") + 2048 * 64
    assert largest < forward.MAX_BODY < 1024**3
