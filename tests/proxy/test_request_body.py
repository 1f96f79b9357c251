"""Every way a client's request body can go wrong on the wire — a corrupt gzip or deflate stream, a
malformed chunked encoding, a body cut short, a body trickled too slowly, a compressed body that expands
past the bound — gets an OpenAI-style 4xx naming its code, is never charged and never reaches an
upstream; a well-formed compressed or chunked body is served."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import zlib

import pytest

from llmroute.testing.fake_upstream import FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.rawhttp import exchange, read_answer, request
from tests.proxy.support import config, eventually, metric, tier, upstream

CHAT = "/v1/chat/completions"
BODY = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
KEY = {"Authorization": "Bearer sk-client"}
LIMIT = 64 * 1024


async def start(harness: Harness, fake: FakeUpstream, **timeouts: float) -> int:
    keys = harness.dir / "keys"
    keys.write_text("sk-client\n")
    limits = {"tiers": [tier("team", apiKeysFile=str(keys), requestsPerMinute=6000)]}
    cfg = config(upstream(fake.url), limits=limits, maxBodyBytes=LIMIT, timeouts=timeouts)
    server = await harness.start(cfg)
    return server.port


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


BROKEN = [
    pytest.param({"Content-Encoding": "gzip"}, b"not gzip at all", id="corrupt-gzip"),
    pytest.param({"Content-Encoding": "deflate"}, b"\x78\x9c" + b"\xff" * 20, id="corrupt-deflate"),
]


@pytest.mark.parametrize(("headers", "body"), BROKEN)
async def test_an_undecodable_body_is_a_400(
    harness: Harness, fake: FakeUpstream, headers: dict[str, str], body: bytes
) -> None:
    port = await start(harness, fake)
    (answer,) = await exchange(port, request(CHAT, body, {**KEY, **headers}))
    assert answer.status == 400, answer.body
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_request_body"
    assert "x-request-id" in answer.headers
    await nothing_charged_or_sent(harness, fake)


async def test_a_malformed_chunked_body_is_a_400(harness: Harness, fake: FakeUpstream) -> None:
    """Broken framing is HTTP's own error, answered by aiohttp's parser before any handler (a plain-text
    400, as any HTTP server answers it); the request itself ends without a charge."""
    port = await start(harness, fake)
    data = request(CHAT, b"", {**KEY, "Transfer-Encoding": "chunked"}, length=False)
    (answer,) = await exchange(port, data + b'5\r\n{"mod\r\nzz\r\n')
    assert answer.status == 400, answer.body
    await nothing_charged_or_sent(harness, fake)


async def test_a_client_that_half_closes_mid_body_is_gone(harness: Harness, fake: FakeUpstream) -> None:
    port = await start(harness, fake)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = request(CHAT, b"", KEY, length=False).removesuffix(b"\r\n")
    writer.write(head + f"Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY[:10])
    writer.write_eof()  # the client is done sending, ten bytes into the body: it has left
    async with asyncio.timeout(10):
        assert await reader.read() == b""  # closed, not left waiting
    writer.close()
    await nothing_charged_or_sent(harness, fake)
    assert metric(await harness.metrics(), "llmroute_requests_total", code="499") == 1


async def test_a_client_that_stops_sending_is_cut_off(harness: Harness, fake: FakeUpstream) -> None:
    port = await start(harness, fake, idleSeconds=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = request(CHAT, b"", KEY, length=False).removesuffix(b"\r\n")
    writer.write(head + f"Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY[:10])
    async with asyncio.timeout(10):  # without a bound on the body, this waits for ever
        answer = await read_answer(reader)
    writer.close()
    assert answer.status == 408 and answer.headers["connection"] == "close"
    error = answer.json()["error"]
    assert error["code"] == "request_timeout" and error["type"] == "invalid_request_error"
    await nothing_charged_or_sent(harness, fake)


async def test_a_trickled_body_is_bounded_in_all(harness: Harness, fake: FakeUpstream) -> None:
    port = await start(harness, fake, idleSeconds=5, totalSeconds=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = request(CHAT, b"", KEY, length=False).removesuffix(b"\r\n")
    writer.write(head + f"Content-Length: {len(BODY)}\r\n\r\n".encode())
    answer = None
    async with asyncio.timeout(10):
        reading = asyncio.ensure_future(read_answer(reader))
        for byte in BODY[:-1]:  # a byte every 50 ms: never idle for long, never done
            if reading.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
        answer = await reading
    writer.close()
    assert answer.status == 408 and answer.json()["error"]["code"] == "request_timeout"
    await nothing_charged_or_sent(harness, fake)


async def test_compressed_and_chunked_bodies_are_served(harness: Harness, fake: FakeUpstream) -> None:
    port = await start(harness, fake)
    answers = [
        *await exchange(port, request(CHAT, gzip.compress(BODY), {**KEY, "Content-Encoding": "gzip"})),
        *await exchange(port, request(CHAT, zlib.compress(BODY), {**KEY, "Content-Encoding": "deflate"})),
        *await exchange(
            port, request(CHAT, chunked(BODY), {**KEY, "Transfer-Encoding": "chunked"}, length=False)
        ),
    ]
    assert [a.status for a in answers] == [200, 200, 200]
    assert [r.body for r in fake.stats.recent] == [json.loads(BODY)] * 3


async def test_a_compressed_body_that_expands_past_the_bound_is_a_413(
    harness: Harness, fake: FakeUpstream
) -> None:
    port = await start(harness, fake)
    bomb = gzip.compress(b"{" + b" " * (LIMIT * 64) + b"}")
    assert len(bomb) < LIMIT
    (answer,) = await exchange(port, request(CHAT, bomb, {**KEY, "Content-Encoding": "gzip"}))
    assert answer.status == 413 and answer.json()["error"]["code"] == "request_too_large"
    await nothing_charged_or_sent(harness, fake)


async def nothing_charged_or_sent(harness: Harness, fake: FakeUpstream) -> None:
    """No upstream saw a request, nothing is in flight, and the tier was not charged."""
    assert fake.stats.received == 0

    async def settled() -> bool:
        return metric(await harness.metrics(), "llmroute_inflight_requests") == 0

    await eventually(settled)
    text = await harness.metrics()
    assert metric(text, "llmroute_requests_total", code="500") == 0
    assert metric(text, "llmroute_tokens_total") == 0
    status, headers, _ = await harness.chat(KEY)
    assert status == 200 and headers["x-ratelimit-remaining-requests"] == "5999"


SECRET = "sk-client-secret-0123456789"
MALFORMED = [
    pytest.param(request(CHAT, BODY, {"Authorization": f"Bearer {SECRET}\x01"}), id="bad-byte-in-a-header"),
    pytest.param(request(CHAT, BODY, {"Authorization": f"Bearer {SECRET}" + "x" * 9000}), id="long-header"),
    pytest.param(
        request(CHAT, b"", {"Transfer-Encoding": "chunked", "X-Key": SECRET}, length=False) + b"zz\r\n\r\n",
        id="broken-chunked",
    ),
    pytest.param(request(CHAT, SECRET.encode(), {**KEY, "Content-Encoding": "gzip"}), id="corrupt-gzip"),
]


@pytest.mark.parametrize("data", MALFORMED)
async def test_a_malformed_request_is_logged_in_one_line_that_quotes_none_of_it(
    harness: Harness, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    """aiohttp logs a request its parser refuses at ERROR with a traceback whose message quotes the bytes
    (here a client's key): the proxy's listeners log it at INFO, naming the exception's class only."""
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    port = await start(harness, fake)
    (answer,) = await exchange(port, data)
    assert answer.status == 400, answer.body

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "aiohttp.server" and r.exc_info is None]

    await eventually(logged)  # a body's error is logged once the answer has gone
    for record in caplog.records:
        if record.name == "aiohttp.server":
            assert record.levelno <= logging.INFO and record.exc_info is None, record.getMessage()
    assert SECRET not in caplog.text
    assert "refused a malformed request" in logged()[0].getMessage()
    await nothing_charged_or_sent(harness, fake)
