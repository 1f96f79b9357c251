"""Bad input and faults: each has a documented answer, nothing crashes, nothing leaks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, eventually, metric, upstream

FAST = {"connectSeconds": 1, "firstByteSeconds": 0.3, "totalSeconds": 2}


async def raw_post(
    h: Harness, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    async with h.session.post(h.url + "/v1/chat/completions", data=body, headers=headers or {}) as resp:
        return resp.status, await resp.json()


async def no_leaks(h: Harness, *fakes: FakeUpstream, pooled: int = 4) -> None:
    assert h.server is not None
    proxy = h.server.proxy
    await eventually(lambda: all(f.stats.active == 0 for f in fakes) and proxy.gate.active == 0)
    assert metric(await h.metrics(), "llmroute_inflight_requests") == 0
    assert all(state.inflight == 0 for state in proxy.balancer.states.values())
    # pooled keep-alive connections are fine; one per request that ever ran is a leak
    assert all(f.connections <= pooled for f in fakes)


async def test_bad_input(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url), maxBodyBytes=4096))
    assert (await raw_post(harness, b'{"model": "m", '))[0] == 400
    assert (await raw_post(harness, b"[1, 2]"))[0] == 400
    status, body = await raw_post(harness, b'{"messages": []}')
    assert status == 400 and body["error"]["param"] == "model"
    status, body = await raw_post(harness, json.dumps({"model": "nope"}).encode())
    assert status == 404 and body["error"]["code"] == "model_not_found"
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}).encode()
    status, body = await raw_post(harness, big)
    assert status == 413 and body["error"]["code"] == "request_too_large"

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    async with harness.session.post(harness.url + "/v1/chat/completions", data=chunked()) as resp:
        assert resp.status == 413  # no Content-Length: counted while reading
    assert fake.stats.received == 0
    assert (await harness.chat())[0] == 200


async def test_reset_is_retried_on_the_next_upstream(
    harness: Harness, fake: FakeUpstream, fake_b: FakeUpstream
) -> None:
    await harness.start(config(upstream(fake.url), upstream(fake_b.url, name="b", group=1), timeouts=FAST))
    fake.default = FakeBehavior(fail="reset")
    status, _, body = await harness.chat()
    assert status == 200 and body["upstream"] == "b"
    status, _, body = await harness.chat(stream=True)
    assert status == 200 and body.rstrip().endswith("data: [DONE]")
    await no_leaks(harness, fake, fake_b)


async def test_reset_without_alternative_is_502(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url), timeouts=FAST))
    fake.default = FakeBehavior(fail="reset")
    status, _, body = await harness.chat()
    assert status == 502 and body["error"]["type"] == "server_error"
    await no_leaks(harness, fake)


async def test_first_byte_timeout_is_504_and_cancels_upstream(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url), timeouts=FAST))
    fake.default = FakeBehavior(fail="hang")
    status, _, _ = await harness.chat()
    assert status == 504
    await eventually(lambda: fake.stats.cancelled == 1)
    await no_leaks(harness, fake)


async def test_upstream_errors_pass_through_after_retries(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url), timeouts=FAST))
    fake.default = FakeBehavior(status=429, retry_after=7)
    status, headers, body = await harness.chat()
    assert status == 429 and headers["Retry-After"] == "7" and body["error"]["message"] == "fake error 429"
    fake.default = FakeBehavior(status=500)
    assert (await harness.chat())[0] == 500
    await no_leaks(harness, fake)


async def test_truncated_stream_ends_with_an_error_event(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url), timeouts=FAST))
    fake.default = FakeBehavior(fail="truncate", chunks=6)
    status, _, text = await harness.chat(stream=True)
    assert status == 200  # the stream had started: the status was already sent
    events = [line for line in text.splitlines() if line.startswith("data: ")]
    assert '"content":"ok"' in events[0] and "[DONE]" not in text
    assert json.loads(events[-1][6:])["error"]["code"] == "upstream_error"
    assert metric(await harness.metrics(), "llmroute_requests_total", code="502") == 1
    await no_leaks(harness, fake)


async def test_stream_exceeding_total_timeout_is_cut_with_an_error(
    harness: Harness, fake: FakeUpstream
) -> None:
    await harness.start(config(upstream(fake.url), timeouts={**FAST, "totalSeconds": 0.5}))
    fake.default = FakeBehavior(chunks=50, chunk_delay=0.05)
    status, _, text = await harness.chat(stream=True)
    assert status == 200 and "total timeout" in text
    await eventually(lambda: fake.stats.cancelled == 1)
    await no_leaks(harness, fake)


async def test_client_disconnect_mid_stream_cancels_upstream(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url)))
    fake.default = FakeBehavior(chunks=100, chunk_delay=0.05)
    payload = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as client:
        resp = await client.post(harness.url + "/v1/chat/completions", json=payload)
        await resp.content.readuntil(b"\n\n")
        resp.close()  # the client goes away
    await eventually(lambda: fake.stats.cancelled == 1)
    await eventually(lambda: fake.connections == 0)
    await no_leaks(harness, fake)
    assert metric(await harness.metrics(), "llmroute_requests_total", code="499") == 1


async def test_slow_upstream_and_slow_client_do_not_block_others(
    harness: Harness, fake: FakeUpstream, fake_b: FakeUpstream
) -> None:
    await harness.start(config(upstream(fake.url), upstream(fake_b.url, name="b", model="slow")))
    fake_b.default = FakeBehavior(latency=3.0)
    slow_upstream = asyncio.ensure_future(harness.chat(model="slow"))
    # a client that asks for a big stream and never reads it; paced so that the stream is still running
    # (active at the upstream) while we look, whatever the socket buffers on this machine absorb
    fake.push(FakeBehavior(chunks=2000, content="x" * 4000, chunk_delay=0.005))
    messages = [{"role": "user", "content": "hi"}]
    payload = json.dumps({"model": "m", "stream": True, "messages": messages}).encode()
    _reader, writer = await asyncio.open_connection("127.0.0.1", harness.server.port if harness.server else 0)
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    writer.write(request + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    await writer.drain()
    await eventually(lambda: fake.stats.active == 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(*(harness.chat() for _ in range(20)))
    assert all(r[0] == 200 for r in results)
    assert loop.time() - started < 2.0 and not slow_upstream.done()
    writer.close()
    assert (await slow_upstream)[0] == 200
    await no_leaks(harness, fake, fake_b, pooled=21)


async def test_stream_request_answered_with_an_error_is_relayed_as_json(
    harness: Harness, fake: FakeUpstream
) -> None:
    await harness.start(config(upstream(fake.url), passiveHealth={"retries": 0}))
    fake.default = FakeBehavior(status=400)
    status, headers, body = await harness.chat(stream=True)
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert body["error"]["message"] == "fake error 400"
    await no_leaks(harness, fake)
