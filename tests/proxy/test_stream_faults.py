"""An upstream stream that breaks off anywhere — mid-line, between an event's lines and its blank line,
after bytes that are not SSE at all — reaches the client (the official ``openai`` SDK) as the events it
completed and then an ``APIError``: never as a stream that ended well, never as a JSON decoding error
of llmroute's error event glued onto the upstream's half line."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import openai
import pytest
from aiohttp import web

from llmroute.proxy import forward
from tests.proxy.conftest import Harness
from tests.proxy.support import config, metric, serve_chat, upstream

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def event(content: str) -> bytes:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}  # fmt: skip
    return b"data: " + json.dumps(chunk).encode()


class Broken:
    """An upstream whose streams are ``pieces`` written one by one, then an end without ``[DONE]``."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in self.pieces:
            await response.write(piece)
        await response.write_eof()
        return response


@pytest.fixture
async def broken() -> AsyncIterator[Broken]:
    up = Broken()
    async with serve_chat(up.handle) as url:
        up.url = url
        yield up


async def stream_until_error(harness: Harness, broken: Broken) -> tuple[str, str]:
    """Through the proxy (no retries), the text the client read from ``broken``'s stream and the message
    of the ``APIError`` that ended it (the test fails if none does)."""
    await harness.start(config(upstream(broken.url), passiveHealth={"retries": 0}))
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-x", max_retries=0, timeout=10)
    text = ""
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            text += chunk.choices[0].delta.content or "" if chunk.choices else ""
    await client.close()
    return text, info.value.message


ENDINGS = [
    pytest.param([b"<html><body>502 Bad Gateway</body></html>"], "", id="not-sse-no-newline"),
    pytest.param([event("a") + b"\n\n", event("b")[:25]], "a", id="mid-line"),
    pytest.param([event("a") + b"\n\n", event("b") + b"\n"], "ab", id="before-the-blank-line"),
    pytest.param(
        [event("a") + b"\n\n" + event("b")[:25], b"more of the half line"], "a", id="split-half-line"
    ),
    pytest.param([b": keep-alive comment\n"], "", id="comment-only"),
]


@pytest.mark.parametrize(("pieces", "seen"), ENDINGS)
async def test_a_broken_stream_ends_in_an_api_error(
    harness: Harness, broken: Broken, pieces: list[bytes], seen: str
) -> None:
    broken.pieces = pieces
    text, error = await stream_until_error(harness, broken)
    assert "without [DONE]" in error
    assert text == seen  # every event the upstream completed, and nothing of the half one
    metrics = await harness.metrics()
    assert metric(metrics, "llmroute_requests_total", code="502") == 1
    assert metric(metrics, "llmroute_inflight_requests") == 0


async def test_a_last_line_without_its_newline_still_completes_the_stream(
    harness: Harness, broken: Broken
) -> None:
    broken.pieces = [event("a") + b"\n\n", b"data: [DONE]"]
    await harness.start(config(upstream(broken.url)))
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-x", max_retries=0, timeout=10)
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert [c.choices[0].delta.content async for c in stream] == ["a"]
    await client.close()
    assert metric(await harness.metrics(), "llmroute_requests_total", code="200") == 1


@pytest.mark.parametrize(
    "end",
    [pytest.param(b"\r", id="cr"), pytest.param(b"\r\n", id="crlf"), pytest.param(b"\n", id="lf")],
)
async def test_a_stream_whose_lines_end_in_any_sse_line_end_completes(
    harness: Harness, broken: Broken, end: bytes
) -> None:
    """SSE lines may end in CRLF, LF or a lone CR. A stream of lone CRs was one unfinished line to the
    proxy: the client got none of its events, then 'ended without [DONE]', and the request counted as a
    502. Pieces split between a CR and its LF and mid-event."""
    whole = event("a") + end + end + event("b") + end + end + b"data: [DONE]" + end + end
    cuts = [len(event("a")) + 1, len(event("a")) + len(end) * 2 + 10, len(whole) - 1]
    broken.pieces = [whole[i:j] for i, j in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    await harness.start(config(upstream(broken.url)))
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-x", max_retries=0, timeout=10)
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert [c.choices[0].delta.content async for c in stream] == ["a", "b"]
    await client.close()
    metrics = await harness.metrics()
    assert metric(metrics, "llmroute_requests_total", code="200") == 1
    assert metric(metrics, "llmroute_inflight_requests") == 0


async def test_a_stream_line_without_end_is_cut_off_at_the_bound(
    harness: Harness, broken: Broken, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upstream that streams bytes with no line end was held until the total timeout, its half line
    growing without bound in the proxy's memory. Past the bound the stream ends as a broken one."""
    monkeypatch.setattr(forward, "MAX_SSE_LINE", 64 * 1024)
    broken.pieces = [event("a") + b"\n\n", *([b"x" * 16 * 1024] * 8)]
    text, error = await stream_until_error(harness, broken)
    assert "over 65536 bytes" in error and text == "a"
    metrics = await harness.metrics()
    assert metric(metrics, "llmroute_requests_total", code="502") == 1
    assert metric(metrics, "llmroute_inflight_requests") == 0
