"""Streams: llmroute asks the upstream for usage on every stream and accounts from it, the client sees the
usage event only if it asked for it; an idle timeout bounds a stream that stalls after it started."""

from __future__ import annotations

import json
import time
from typing import Any

import openai
import pytest

from llmroute.proxy.outcome import Outcome
from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, eventually, metric, tier, upstream


def events(text: str) -> list[Any]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


CASES = [
    # (stream_options sent by the client, upstream shape, path, client sees a usage event, tokens from)
    pytest.param(None, "openai", "/v1/chat/completions", False, "usage", id="not-asked"),
    pytest.param({"include_usage": False}, "openai", "/v1/chat/completions", False, "usage", id="asked-not"),
    pytest.param({"include_usage": True}, "openai", "/v1/chat/completions", True, "usage", id="asked"),
    pytest.param(None, "usage_every_chunk", "/v1/chat/completions", False, "usage", id="usage-null-chunks"),
    pytest.param(None, "no_usage", "/v1/chat/completions", False, "counted", id="upstream-ignores-it"),
    pytest.param(None, "openai", "/v1/completions", False, "usage", id="completions"),
]


@pytest.mark.parametrize(("options", "shape", "path", "sees_usage", "tokens"), CASES)
async def test_usage_is_asked_for_and_shown_only_when_the_client_asked(
    harness: Harness,
    fake: FakeUpstream,
    options: dict[str, Any] | None,
    shape: str,
    path: str,
    sees_usage: bool,
    tokens: str,
) -> None:
    server = await harness.start(config(upstream(fake.url)))
    outcomes: list[Outcome] = []
    assert server.proxy.api is not None
    server.proxy.api.observers.append(outcomes.append)
    fake.default = FakeBehavior(chunks=5, shape=shape)  # type: ignore[arg-type]
    body: dict[str, Any] = {"model": "m", "stream": True, "max_tokens": 1000}
    body |= {"messages": [{"role": "user", "content": "hi"}]} if "chat" in path else {"prompt": "hi"}
    if options is not None:
        body["stream_options"] = options
    status, _, text = await harness.post(path, body)
    assert status == 200 and text.rstrip().endswith("data: [DONE]")
    sent = fake.stats.recent[-1].body
    assert sent["stream_options"]["include_usage"] is True  # asked upstream whatever the client sent
    assert {k: v for k, v in sent.items() if k != "stream_options"} == {
        k: v for k, v in body.items() if k != "stream_options"
    }
    seen = events(text)
    usage_events = [e for e in seen if e.get("usage") and not e["choices"]]
    assert len(usage_events) == (1 if sees_usage else 0)
    assert sum(1 for e in seen if e["choices"]) == 6  # every content event is relayed
    # the fake reports 5 output tokens; counted, the 6 events less one make 5 too
    assert outcomes[0].usage_source == ("reported" if tokens == "usage" else "counted")
    assert metric(await harness.metrics(), "llmroute_tokens_total", direction="output") == 5


async def test_openai_sdk_stream_without_usage_sees_no_usage_chunk(
    harness: Harness, fake: FakeUpstream
) -> None:
    keys = harness.dir / "keys"
    keys.write_text("sk-client\n")
    limits = {"tiers": [tier("team", apiKeysFile=str(keys), tokensPerMinute=600_000)]}
    await harness.start(config(upstream(fake.url, model="gpt-4o-mini"), limits=limits))
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-client", max_retries=0, timeout=10)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.choices and c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "okokok"
    await client.close()
    text = await harness.metrics()
    assert metric(text, "llmroute_tokens_total", tier="team", direction="output") == 3  # the fake's usage
    assert metric(text, "llmroute_tokens_total", tier="team", direction="input") > 0


async def test_a_stream_that_stalls_is_cut_by_the_idle_timeout(harness: Harness, fake: FakeUpstream) -> None:
    timeouts = {"connectSeconds": 1, "firstByteSeconds": 5, "idleSeconds": 0.3, "totalSeconds": 60}
    await harness.start(config(upstream(fake.url), timeouts=timeouts))
    fake.default = FakeBehavior(fail="stall", stall_after=2, chunks=10)
    started = time.monotonic()
    status, _, text = await harness.chat(stream=True)
    assert status == 200 and time.monotonic() - started < 5  # not the 60 s total
    seen = events(text)
    assert len([e for e in seen if e.get("choices")]) == 2
    assert seen[-1]["error"]["code"] == "upstream_error" and "idle" in seen[-1]["error"]["message"]
    await eventually(lambda: fake.stats.cancelled == 1)
    assert metric(await harness.metrics(), "llmroute_requests_total", code="502") == 1


async def test_slow_but_steady_streams_are_not_cut(harness: Harness, fake: FakeUpstream) -> None:
    timeouts = {"connectSeconds": 1, "firstByteSeconds": 5, "idleSeconds": 0.3, "totalSeconds": 60}
    await harness.start(config(upstream(fake.url), timeouts=timeouts))
    fake.default = FakeBehavior(chunks=8, chunk_delay=0.1)  # 0.8 s in all, never 0.3 s silent
    status, _, text = await harness.chat(stream=True)
    assert status == 200 and text.rstrip().endswith("data: [DONE]") and '"error"' not in text
