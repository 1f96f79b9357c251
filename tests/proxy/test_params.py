"""Strict on the fields llmroute acts on, untouched on the rest: a wrong type or value in ``model``,
``stream``, ``stream_options``, ``max_tokens``/``max_completion_tokens``, ``n``, ``temperature`` or
``seed`` is an OpenAI-style 400 naming ``param``, before any charge or upstream call."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from llmroute.proxy.errors import Refused
from llmroute.proxy.params import check
from llmroute.testing.fake_upstream import FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, tier, upstream

MESSAGES = [{"role": "user", "content": "hi"}]
BAD: list[tuple[dict[str, Any], str, str]] = [
    # (the request's fields besides messages, the param named, OpenAI's code)
    ({}, "model", "missing_required_parameter"),
    ({"model": 42}, "model", "invalid_type"),
    ({"model": ["m"]}, "model", "invalid_type"),
    ({"model": ""}, "model", "empty_string"),
    ({"model": "m", "stream": "true"}, "stream", "invalid_type"),
    ({"model": "m", "stream": 1}, "stream", "invalid_type"),
    ({"model": "m", "stream": True, "stream_options": "usage"}, "stream_options", "invalid_type"),
    ({"model": "m", "stream_options": {"include_usage": True}}, "stream_options", "invalid_value"),
    ({"model": "m", "stream": False, "stream_options": {}}, "stream_options", "invalid_value"),
    (
        {"model": "m", "stream": True, "stream_options": {"include_usage": "yes"}},
        "stream_options.include_usage",
        "invalid_type",
    ),
    ({"model": "m", "max_tokens": "100"}, "max_tokens", "invalid_type"),
    ({"model": "m", "max_tokens": 1.5}, "max_tokens", "invalid_type"),
    ({"model": "m", "max_tokens": True}, "max_tokens", "invalid_type"),
    ({"model": "m", "max_tokens": 0}, "max_tokens", "integer_below_min_value"),
    ({"model": "m", "max_tokens": -100}, "max_tokens", "integer_below_min_value"),
    ({"model": "m", "max_completion_tokens": "lots"}, "max_completion_tokens", "invalid_type"),
    ({"model": "m", "max_completion_tokens": 0}, "max_completion_tokens", "integer_below_min_value"),
    ({"model": "m", "n": 0}, "n", "integer_below_min_value"),
    ({"model": "m", "n": 129}, "n", "integer_above_max_value"),
    ({"model": "m", "n": "2"}, "n", "invalid_type"),
    ({"model": "m", "temperature": "0"}, "temperature", "invalid_type"),
    ({"model": "m", "temperature": False}, "temperature", "invalid_type"),
    ({"model": "m", "temperature": -0.1}, "temperature", "decimal_out_of_range"),
    ({"model": "m", "temperature": 2.5}, "temperature", "decimal_out_of_range"),
    ({"model": "m", "seed": "7"}, "seed", "invalid_type"),
    ({"model": "m", "seed": 1.0}, "seed", "invalid_type"),
    ({"model": "m", "seed": 2**63}, "seed", "integer_above_max_value"),
]


@pytest.mark.parametrize(
    ("fields", "param", "code"), BAD, ids=lambda v: str(v) if isinstance(v, str) else None
)
def test_check_names_the_param(fields: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(Refused) as info:
        check({**fields, "messages": MESSAGES})
    assert info.value.response.status == 400 and info.value.error == code
    text = info.value.response.text
    assert text is not None and f'"param":"{param}"' in text


GOOD = [
    {
        "model": "m",
        "stream": None,
        "stream_options": None,
        "max_tokens": None,
        "n": None,
        "temperature": None,
    },
    {"model": "m", "stream": True, "stream_options": {"include_usage": False}},
    {"model": "m", "max_tokens": 1, "n": 128, "temperature": 2, "seed": -(2**63)},
    {"model": "m", "temperature": 0.0, "seed": 0, "max_completion_tokens": 10**6},
]


@pytest.mark.parametrize("fields", GOOD)
def test_valid_and_null_values_pass(fields: dict[str, Any]) -> None:
    params = check(fields)
    assert params.model == "m" and params.n >= 1


def limited(tmp: Path, url: str) -> dict[str, Any]:
    (tmp / "keys").write_text("sk-client\n")
    team = tier("team", apiKeysFile=str(tmp / "keys"), requestsPerMinute=60, tokensPerMinute=6000)
    return config(upstream(url), limits={"tiers": [team]})


async def test_bad_fields_are_refused_before_any_charge_or_upstream_call(
    harness: Harness, fake: FakeUpstream
) -> None:
    server = await harness.start(limited(harness.dir, fake.url))
    auth = {"Authorization": "Bearer sk-client"}
    for fields, param, code in BAD:
        status, _, body = await harness.post("/v1/chat/completions", {**fields, "messages": MESSAGES}, auth)
        assert status == 400, fields
        assert body["error"] == body["error"] | {
            "param": param,
            "code": code,
            "type": "invalid_request_error",
        }
    assert fake.stats.received == 0
    local = server.proxy.limiter.local
    assert local.debt("t|team|r", time.monotonic()) == 0 and local.debt("t|team|t", time.monotonic()) == 0


async def test_everything_else_passes_through_untouched(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url)))
    body = {
        "model": "m",
        "messages": MESSAGES,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "response_format": {"type": "json_object"},
        "logit_bias": {"50256": -100},
        "vendor_extension": {"anything": [1, "two", None]},
        "top_p": "not llmroute's business",
    }
    status, _, _ = await harness.post("/v1/chat/completions", body)
    assert status == 200 and fake.stats.recent[-1].body == body


OUTPUT_BOUNDS = [
    # (the output-bound fields a client sent, the bound the estimate charges): whichever of the two an
    # upstream honours, the estimate covers it
    ({}, None),
    ({"max_tokens": 50}, 50),
    ({"max_completion_tokens": 50}, 50),
    ({"max_completion_tokens": 1, "max_tokens": 100000}, 100000),
    ({"max_completion_tokens": 100000, "max_tokens": 1}, 100000),
    ({"max_completion_tokens": None, "max_tokens": 7}, 7),
]


@pytest.mark.parametrize(("fields", "bound"), OUTPUT_BOUNDS)
def test_the_estimate_covers_either_output_bound(fields: dict[str, Any], bound: int | None) -> None:
    assert check({"model": "m", **fields}).max_output == bound
    slow_path = {"model": "m", "stream": True, "stream_options": {}}  # field by field, not the fast pass
    assert check({**slow_path, **fields}).max_output == bound
