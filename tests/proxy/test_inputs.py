"""A request without the input its path requires (``messages``, ``prompt``, ``input``), or with it in a
shape no upstream accepts, is an OpenAI-style 400 naming ``param`` — answered by llmroute before any
charge or upstream call, as OpenAI answers it — while every shape the API allows passes."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from llmroute.testing.fake_upstream import FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, metric, tier, upstream

CHAT, COMPLETIONS, EMBEDDINGS = "/v1/chat/completions", "/v1/completions", "/v1/embeddings"
USER = {"role": "user", "content": "hi"}
TOOL = {"role": "tool", "content": "42"}
BAD: list[tuple[str, dict[str, Any], str, str]] = [
    # (path, the body besides model, the param named, OpenAI's code)
    (CHAT, {}, "messages", "missing_required_parameter"),
    (CHAT, {"messages": None}, "messages", "missing_required_parameter"),
    (CHAT, {"messages": []}, "messages", "empty_array"),
    (CHAT, {"messages": "hi"}, "messages", "invalid_type"),
    (CHAT, {"messages": {"role": "user", "content": "hi"}}, "messages", "invalid_type"),
    (CHAT, {"messages": [USER, "hi"]}, "messages[1]", "invalid_type"),
    (CHAT, {"messages": [{"content": "hi"}]}, "messages[0].role", "missing_required_parameter"),
    (CHAT, {"messages": [{"role": 1, "content": "hi"}]}, "messages[0].role", "invalid_type"),
    (CHAT, {"messages": [{"role": "user", "content": 42}]}, "messages[0].content", "invalid_type"),
    (CHAT, {"messages": [{"role": "user", "content": {"type": "x"}}]}, "messages[0].content", "invalid_type"),
    (CHAT, {"messages": [{"role": "user", "content": ["hi"]}]}, "messages[0].content[0]", "invalid_type"),
    (
        CHAT,
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        "messages[0].content[0].type",
        "missing_required_parameter",
    ),
    (CHAT, {"messages": [USER, TOOL]}, "messages[1].tool_call_id", "missing_required_parameter"),
    (CHAT, {"messages": [{**TOOL, "tool_call_id": 7}]}, "messages[0].tool_call_id", "invalid_type"),
    (COMPLETIONS, {}, "prompt", "missing_required_parameter"),
    (COMPLETIONS, {"prompt": 42}, "prompt", "invalid_type"),
    (COMPLETIONS, {"prompt": {"text": "hi"}}, "prompt", "invalid_type"),
    (EMBEDDINGS, {}, "input", "missing_required_parameter"),
    (EMBEDDINGS, {"input": []}, "input", "empty_array"),
    (EMBEDDINGS, {"input": 1.5}, "input", "invalid_type"),
]  # fmt: skip

GOOD: list[tuple[str, dict[str, Any]]] = [
    (CHAT, {"messages": [USER]}),
    (CHAT, {"messages": [{"role": "developer", "content": "be brief"}, USER]}),
    (CHAT, {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]}]}),
    (CHAT, {"messages": [
        USER,
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "42"}]},
    ]}),
    (COMPLETIONS, {"prompt": "hi"}),
    (COMPLETIONS, {"prompt": ["hi", "there"]}),
    (COMPLETIONS, {"prompt": [[1, 2], [3]]}),
    (EMBEDDINGS, {"input": "hi"}),
    (EMBEDDINGS, {"input": [[1, 2, 3]]}),
    # vLLM's extensions: prompt embeddings in place of a prompt, chat messages in place of an input
    (COMPLETIONS, {"prompt_embeds": "AAAA"}),
    (EMBEDDINGS, {"messages": [USER]}),
]  # fmt: skip


async def start(harness: Harness, fake: FakeUpstream) -> None:
    keys = harness.dir / "keys"
    keys.write_text("sk-client\n")
    await harness.start(config(upstream(fake.url), limits={"tiers": [tier("team", apiKeysFile=str(keys))]}))


KEY = {"Authorization": "Bearer sk-client"}


async def test_a_missing_or_malformed_input_is_a_400_naming_it(harness: Harness, fake: FakeUpstream) -> None:
    await start(harness, fake)
    for path, fields, param, code in BAD:
        status, _headers, body = await harness.post(path, {"model": "m", **fields}, KEY)
        assert status == 400, (path, fields, body)
        error = body["error"]
        assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error"), (
            fields
        )
        assert f"'{param}'" in error["message"]
    assert fake.stats.received == 0  # no upstream call spent on a request no upstream can serve
    text = await harness.metrics()
    assert metric(text, "llmroute_requests_total", code="400") == len(BAD)
    assert metric(text, "llmroute_tokens_total") == 0


@pytest.mark.parametrize(("path", "fields"), GOOD)
async def test_every_shape_the_api_allows_passes(
    harness: Harness, fake: FakeUpstream, path: str, fields: dict[str, Any]
) -> None:
    await start(harness, fake)
    status, _headers, body = await harness.post(path, {"model": "m", **fields}, KEY)
    assert status == 200, body
    assert fake.stats.recent[-1].body == {"model": "m", **fields}


async def test_the_sdk_sees_a_bad_request_naming_the_param(harness: Harness, fake: FakeUpstream) -> None:
    await start(harness, fake)
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="sk-client", max_retries=0, timeout=10)
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="m", messages=[])
    assert info.value.param == "messages" and info.value.code == "empty_array"
    with pytest.raises(openai.BadRequestError) as info:
        await client.embeddings.create(model="m", input=[])
    assert info.value.param == "input"
    await client.close()
    assert fake.stats.received == 0
