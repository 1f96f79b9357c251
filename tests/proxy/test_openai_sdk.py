"""Compatibility: the official ``openai`` SDK talks to the proxy as it would to OpenAI."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, tier, upstream


async def start(harness: Harness, fake: FakeUpstream, rpm: int | None = None) -> openai.AsyncOpenAI:
    keys = Path(harness.dir) / "keys"
    keys.write_text("sk-client\n")
    limits = {"tiers": [tier("team", apiKeysFile=str(keys), requestsPerMinute=rpm)]}
    await harness.start(config(upstream(fake.url, model="gpt-4o-mini"), limits=limits))
    return openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-client", max_retries=0, timeout=10)


async def test_plain_and_streaming_chat(harness: Harness, fake: FakeUpstream) -> None:
    client = await start(harness, fake)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    completion = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert completion.choices[0].message.content == "okokok"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    pieces = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
    assert text == "okokok" and pieces[-1].usage is not None
    models = await client.models.list()
    assert [m.id for m in models.data] == ["gpt-4o-mini"]
    embedding = await client.embeddings.create(model="gpt-4o-mini", input="hi")
    assert embedding.data[0].embedding
    await client.close()


async def test_errors_map_to_sdk_exceptions(harness: Harness, fake: FakeUpstream) -> None:
    client = await start(harness, fake)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="nope", messages=messages)
    bad = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await bad.chat.completions.create(model="gpt-4o-mini", messages=messages)
    fake.default = FakeBehavior(fail="truncate", chunks=6)
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    await client.close()
    await bad.close()


async def test_429_and_the_sdk_retry_logic(harness: Harness, fake: FakeUpstream) -> None:
    client = await start(harness, fake, rpm=60)  # one request per second, burst of one
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.response.headers["x-ratelimit-limit-requests"] == "60"
    # with its default retries the SDK waits as Retry-After says and then succeeds
    patient = client.with_options(max_retries=3)
    completion = await patient.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert completion.choices[0].message.content == "okokok"
    assert fake.stats.received == 2
    await client.close()
