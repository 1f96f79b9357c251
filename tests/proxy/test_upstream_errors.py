"""An upstream's error answered to llmroute's own key speaks of llmroute's account: the client (the
official ``openai`` SDK) never sees the key, a part of it, the organisation's id or the upstream's
cookies, and a refusal of llmroute's credentials is not reported as the client's key being wrong."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.proxy.conftest import Harness
from tests.proxy.support import config, serve_chat, tier, upstream

UPSTREAM_KEY = "sk-proj-UpStReAmKeY0123456789abcdef"
MASKED = "sk-proj-*********************cdef"  # how OpenAI quotes a wrong key back
ORG = "org-AbCdEf0123456789"
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
NO_RETRY = {"retries": 0, "retryOnStatus": []}


@dataclass
class Scripted:
    """An upstream that answers every request with ``status``, ``body`` and ``headers``; records the
    Authorization header it received."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    seen: list[str | None] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen.append(request.headers.get("Authorization"))
        headers = {"Content-Type": self.content_type, **self.headers}
        return web.Response(status=self.status, body=self.body, headers=headers)


def openai_error(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    async for up in _serve(Scripted()):
        yield up


@pytest.fixture
async def scripted_b() -> AsyncIterator[Scripted]:
    async for up in _serve(Scripted()):
        yield up


async def _serve(up: Scripted) -> AsyncIterator[Scripted]:
    async with serve_chat(up.handle) as url:
        up.url = url
        yield up


async def keyed_route(harness: Harness, up: Scripted) -> openai.AsyncOpenAI:
    """A route whose clients llmroute verifies, sending the upstream llmroute's own key."""
    keys, upstream_key = harness.dir / "keys", harness.dir / "upstream-key"
    keys.write_text("sk-client\n")
    upstream_key.write_text(UPSTREAM_KEY)
    limits = {"tiers": [tier("team", apiKeysFile=str(keys))]}
    up_cfg = upstream(up.url, apiKeyFile=str(upstream_key))
    await harness.start(config(up_cfg, limits=limits, passiveHealth=NO_RETRY))
    return openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-client", max_retries=0, timeout=10)


def leaks(text: str) -> list[str]:
    return [s for s in (UPSTREAM_KEY, MASKED, "cdef", ORG, "UpStReAm") if s in text]


async def test_a_refused_upstream_key_is_a_502_that_quotes_nothing(
    harness: Harness, scripted: Scripted
) -> None:
    client = await keyed_route(harness, scripted)
    scripted.status = 401
    scripted.body = openai_error(
        f"Incorrect API key provided: {MASKED}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )
    scripted.headers = {"Set-Cookie": "__cf_bm=abc; path=/", "openai-organization": ORG}
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    error = info.value
    assert not isinstance(error, openai.AuthenticationError)  # the client's key was fine
    assert error.status_code == 502 and error.code == "upstream_error"
    assert not leaks(error.response.text) and not leaks(str(error.response.headers))
    assert "set-cookie" not in error.response.headers
    assert scripted.seen == [f"Bearer {UPSTREAM_KEY}"]  # the client's own key never went upstream
    await client.close()


async def test_an_upstream_rate_limit_keeps_its_meaning_but_not_the_organisation(
    harness: Harness, scripted: Scripted
) -> None:
    client = await keyed_route(harness, scripted)
    scripted.status = 429
    scripted.headers = {"Retry-After": "2"}
    scripted.body = openai_error(
        f"Rate limit reached for gpt-4o in organization {ORG} on tokens per min (TPM): Limit 30000, "
        "Used 29000, Requested 2000. Please try again in 2s.",
        "tokens",
        "rate_limit_exceeded",
    )
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    error = info.value
    assert error.code == "rate_limit_exceeded" and error.type == "tokens"
    assert error.response.headers["retry-after"] == "2"
    assert not leaks(error.response.text) and "Please try again in 2s" in error.message
    await client.close()


async def test_an_error_about_the_request_keeps_its_param_without_the_key(
    harness: Harness, scripted: Scripted
) -> None:
    client = await keyed_route(harness, scripted)
    scripted.status = 400
    scripted.body = openai_error(
        f"Invalid 'messages[0].content': unsupported (request by {UPSTREAM_KEY}).",
        "invalid_request_error",
        "invalid_value",
        "messages[0].content",
    )
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    body: Any = info.value.body
    assert body["param"] == "messages[0].content" and body["code"] == "invalid_value"
    assert "Invalid 'messages[0].content'" in body["message"] and not leaks(info.value.response.text)
    await client.close()


@pytest.mark.parametrize(
    ("shape", "body"),
    [
        (  # vLLM's and SGLang's own error shape
            "flat",
            {"object": "error", "message": "MESSAGE", "type": "BadRequestError", "param": None, "code": 400},
        ),
        ("string", {"error": "MESSAGE", "error_type": "validation"}),  # Hugging Face TGI, Ollama
        ("detail", {"detail": "MESSAGE"}),  # FastAPI
    ],
)
async def test_an_engines_own_error_shape_keeps_its_message_without_the_key(
    harness: Harness, scripted: Scripted, shape: str, body: dict[str, Any]
) -> None:
    """A self-hosted engine says why it refused a request in its own shape: the client reads that reason
    (it was the generic 'The upstream answered HTTP 400.'), stripped of the key like an OpenAI error."""
    client = await keyed_route(harness, scripted)
    reason = f"This model's maximum context length is 4096 tokens; {UPSTREAM_KEY} asked 5000."
    scripted.status = 400
    scripted.body = json.dumps({k: reason if v == "MESSAGE" else v for k, v in body.items()}).encode()
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    message = info.value.message
    assert "maximum context length is 4096 tokens" in message, shape
    assert not leaks(info.value.response.text)
    await client.close()


async def test_an_error_page_becomes_an_openai_error(harness: Harness, scripted: Scripted) -> None:
    client = await keyed_route(harness, scripted)
    scripted.status, scripted.content_type = 503, "text/html"
    scripted.body = f"<html><body>503 Service Unavailable ({ORG})</body></html>".encode()
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 503 and info.value.code == "upstream_error"
    assert info.value.response.headers["content-type"].startswith("application/json")
    assert not leaks(info.value.response.text)
    await client.close()


def chunk(content: str) -> bytes:
    delta = {"index": 0, "delta": {"content": content}, "finish_reason": None}
    event = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [delta]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


async def test_an_error_event_mid_stream_is_stripped_of_the_key(harness: Harness, scripted: Scripted) -> None:
    """An upstream that fails after its stream began can only say so in an event: stripped as an error
    status's body is, it still ends the client's stream in an ``APIError``."""
    client = await keyed_route(harness, scripted)
    scripted.content_type = "text/event-stream"
    error = openai_error(f"Quota exceeded for {MASKED} in {ORG}.", "insufficient_quota", "insufficient_quota")
    scripted.body = chunk("par") + b"event: error\r\ndata: " + error + b"\r\n\r\n"
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    seen = []
    with pytest.raises(openai.APIError) as info:
        async for event in stream:
            seen.append(event.choices[0].delta.content)
    assert seen == ["par"]
    body: Any = info.value.body
    assert body["code"] == "insufficient_quota" and body["message"].startswith("Quota exceeded for ")
    assert not leaks(info.value.message) and not leaks(json.dumps(body))
    payload = {"model": "m", "messages": MESSAGES, "stream": True}
    status, _, raw = await harness.post(
        "/v1/chat/completions", payload, {"Authorization": "Bearer sk-client"}
    )
    assert status == 200 and "par" in raw and "insufficient_quota" in raw and not leaks(raw)
    await client.close()


async def test_an_error_object_under_a_success_status_is_stripped_of_the_key(
    harness: Harness, scripted: Scripted
) -> None:
    await keyed_route(harness, scripted)
    scripted.body = openai_error(
        f"Incorrect API key provided: {MASKED} ({ORG}).", "invalid_request_error", None
    )
    status, _, body = await harness.chat({"Authorization": "Bearer sk-client"})
    assert status == 200 and body["error"]["message"].startswith("Incorrect API key provided: ")
    assert body["error"]["type"] == "invalid_request_error" and not leaks(json.dumps(body))
    scripted.body = COMPLETION.replace(b'"ok"', b'"an answer about \\"error\\" and sk-words"')
    status, _, body = await harness.chat({"Authorization": "Bearer sk-client"})
    assert (
        status == 200 and body["choices"][0]["message"]["content"] == 'an answer about "error" and sk-words'
    )


async def test_errors_about_the_clients_own_key_reach_the_client(
    harness: Harness, scripted: Scripted
) -> None:
    """A route that does not verify keys sends the client's key upstream: its refusal is the client's."""
    await harness.start(config(upstream(scripted.url), passiveHealth=NO_RETRY))
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-mine", max_retries=0)
    scripted.status = 401
    scripted.body = openai_error(
        "Incorrect API key provided: sk-mine.", "invalid_request_error", "invalid_api_key"
    )
    with pytest.raises(openai.AuthenticationError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    body: Any = info.value.body
    assert body["message"] == "Incorrect API key provided: sk-mine."
    assert scripted.seen == ["Bearer sk-mine"]
    await client.close()


COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    }
).encode()


async def test_an_upstream_refusing_the_gateways_key_is_a_failure_retried_elsewhere(
    harness: Harness, scripted: Scripted, scripted_b: Scripted, caplog: pytest.LogCaptureFixture
) -> None:
    """An upstream that refuses llmroute's own key can serve no one: its 401 is retried on the next
    upstream, counts against it (passive health, the attempts metric) and is logged, without the key."""
    keys, upstream_key = harness.dir / "keys", harness.dir / "upstream-key"
    keys.write_text("sk-client\n")
    upstream_key.write_text(UPSTREAM_KEY)
    scripted.status = 401
    scripted.body = openai_error(f"Incorrect API key provided: {MASKED}.", "invalid_request_error", "x")
    scripted_b.body = COMPLETION
    ups = [
        upstream(scripted.url, name="revoked", apiKeyFile=str(upstream_key)),
        upstream(scripted_b.url, name="fine", apiKeyFile=str(upstream_key)),
    ]
    limits = {"tiers": [tier("team", apiKeysFile=str(keys))]}
    await harness.start(config(*ups, limits=limits))
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-client", max_retries=0, timeout=10)
    with caplog.at_level(logging.INFO, logger="llmroute.proxy"):
        for _ in range(4):  # round robin: the revoked upstream comes first at least once
            answer = await client.chat.completions.create(model="m", messages=MESSAGES)
            assert answer.choices[0].message.content == "ok"
    await client.close()
    assert scripted.seen, "the revoked upstream was never tried"
    refused = [
        sample.value
        for family in text_string_to_metric_families(await harness.metrics())
        for sample in family.samples
        if sample.name == "llmroute_proxy_upstream_attempts_total"
        and sample.labels.get("upstream") == "revoked"
        and sample.labels.get("outcome") == "status_401"
    ]
    assert refused and refused[0] == len(scripted.seen)  # every refusal counted as a failed attempt
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("revoked refused the gateway's credentials (HTTP 401)" in m for m in warned), warned
    assert not any(leaks(r.getMessage()) for r in caplog.records)
