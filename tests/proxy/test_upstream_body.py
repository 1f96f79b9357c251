"""The upstream runs the request llmroute checked, charged, routed and cached — byte for byte what llmroute
parsed, whatever parser the upstream uses.

The fake upstream here reads a key given twice as parsers that keep the FIRST one do (llmroute's orjson
keeps the last): any body it reads differently from llmroute would run upstream as another request. Bodies
no correct JSON parser agrees on (a BOM, trailing data, lone surrogates, invalid UTF-8, NaN, infinite
numbers, integers past 64 bits) are refused before anything is charged or sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from llmroute.proxy.outcome import Outcome
from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import eventually
from tests.proxy.test_cache import ALICE, BOB, bearer, keyed

EVIL = '{"role":"user","content":"EVIL"}'
BENIGN = '{"role":"user","content":"benign"}'
USER = [{"role": "user", "content": "benign"}]

DUPLICATES: list[tuple[str, str, dict[str, Any]]] = [
    # (case, the raw body a client sends, the request llmroute decides on: what the upstream must read)
    ("model", f'{{"model":"big","model":"m","messages":[{BENIGN}]}}', {"model": "m", "messages": USER}),
    (
        "max_tokens",
        f'{{"model":"m","max_tokens":100000,"messages":[{BENIGN}],"max_tokens":1}}',
        {"model": "m", "max_tokens": 1, "messages": USER},
    ),
    (
        "max_completion_tokens",
        f'{{"model":"m","max_completion_tokens":9999,"max_completion_tokens":2,"messages":[{BENIGN}]}}',
        {"model": "m", "max_completion_tokens": 2, "messages": USER},
    ),
    (
        "messages",
        f'{{"model":"m","messages":[{EVIL}],"messages":[{BENIGN}]}}',
        {"model": "m", "messages": USER},
    ),
    (
        "nested-content",
        '{"model":"m","messages":[{"role":"user","content":"EVIL","content":"benign"}]}',
        {"model": "m", "messages": USER},
    ),
    (
        "escaped-key",  # the same key spelt with an escape: two keys to a byte scanner, one to any parser
        f'{{"model":"m","messages":[{EVIL}],"messag\\u0065s":[{BENIGN}]}}',
        {"model": "m", "messages": USER},
    ),
    (
        "stream",
        f'{{"model":"m","stream":true,"messages":[{BENIGN}],"stream":false}}',
        {"model": "m", "stream": False, "messages": USER},
    ),
    (
        "nested-stream-options",
        f'{{"model":"m","stream":true,"stream_options":{{"include_usage":false,"include_usage":true}},'
        f'"messages":[{BENIGN}]}}',
        {"model": "m", "stream": True, "stream_options": {"include_usage": True}, "messages": USER},
    ),
    (
        "nested-in-a-stream-llmroute-asks-usage-of",
        '{"model":"m","stream":true,"messages":[{"role":"user","content":"EVIL","content":"benign"}]}',
        {"model": "m", "stream": True, "messages": USER, "stream_options": {"include_usage": True}},
    ),
    (
        "number-spellings",  # one value to llmroute, written once in one spelling
        f'{{"model":"m","temperature":0.50000000000000000001,"messages":[{BENIGN}],"seed":-0}}',
        {"model": "m", "temperature": 0.5, "messages": USER, "seed": 0},
    ),
    (
        "underflow-to-zero",  # a temperature of 0 to llmroute (cacheable) is 0 upstream too
        f'{{"model":"m","temperature":1e-400,"messages":[{BENIGN}]}}',
        {"model": "m", "temperature": 0.0, "messages": USER},
    ),
]


@pytest.fixture
async def first_wins() -> AsyncIterator[FakeUpstream]:
    up = FakeUpstream("a", FakeBehavior(shape="echo"), duplicate_keys="first")
    await up.start()
    try:
        yield up
    finally:
        await up.stop()


async def post_raw(harness: Harness, raw: bytes, auth: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """POST ``raw`` as it is: status, headers, body."""
    headers = {"Content-Type": "application/json", **auth}
    async with harness.session.post(harness.url + "/v1/chat/completions", data=raw, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key given twice upstream: {keys}"
    return dict(pairs)


@pytest.mark.parametrize(("raw", "decided"), [pytest.param(r, d, id=c) for c, r, d in DUPLICATES])
async def test_the_upstream_reads_the_request_llmroute_decided_on(
    harness: Harness, first_wins: FakeUpstream, raw: str, decided: dict[str, Any]
) -> None:
    await harness.start(keyed(harness.dir, first_wins.url))
    status, headers, answer = await post_raw(harness, raw.encode(), bearer(ALICE))
    assert status == 200, answer
    got = first_wins.stats.recent[-1]
    assert got.body == decided  # the upstream keeping the first of a key read what llmroute read
    assert json.loads(got.raw, object_pairs_hook=no_duplicates) == decided  # and so would any parser
    assert got.raw == json.dumps(decided, separators=(",", ":")).encode()  # each value in one spelling
    ctype = "text/event-stream" if decided.get("stream") else "application/json"
    assert headers["Content-Type"].startswith(ctype)
    if not decided.get("stream"):
        assert json.loads(answer)["choices"][0]["message"]["content"] == "benign"


async def test_what_is_charged_is_what_is_sent(harness: Harness, first_wins: FakeUpstream) -> None:
    """The token estimate is of the body the upstream receives: the padding of a discarded duplicate is
    not charged, and the ``max_tokens`` charged is the one the upstream honours."""
    tpm = 10**6
    limits = {"tiers": [{"name": "team", "apiKeysFile": str(harness.dir / "team"), "tokensPerMinute": tpm}]}
    server = await harness.start(keyed(harness.dir, first_wins.url, limits=limits))
    outcomes: list[Outcome] = []
    assert server.proxy.api is not None
    server.proxy.api.observers.append(outcomes.append)
    first_wins.default = FakeBehavior(shape="no_usage")
    padding = "x" * 4000
    raw = (f'{{"model":"m","max_tokens":500000,"messages":[{{"role":"user","content":"{padding}"}}],'
           f'"messages":[{BENIGN}],"max_tokens":100}}').encode()  # fmt: skip
    status, headers, _ = await post_raw(harness, raw, bearer(ALICE))
    assert status == 200 and first_wins.stats.recent[-1].body["max_tokens"] == 100
    prompt = len(first_wins.stats.recent[-1].raw) // 4 + 1
    assert int(headers["x-ratelimit-remaining-tokens"]) == tpm - (prompt + 100)
    await eventually(lambda: len(outcomes) == 1)
    assert outcomes[0].tokens_in == prompt < len(padding) // 4  # no usage reported: the estimate of it


REFUSED: list[tuple[str, bytes, str | None]] = [
    # (case, a body parsers disagree on or that llmroute cannot read as a client meant it, the param named)
    ("bom", b'\xef\xbb\xbf{"model":"m","messages":[]}', None),
    ("trailing-object", b'{"model":"m","messages":[]}{"model":"big"}', None),
    ("trailing-garbage", b'{"model":"m","messages":[]} x', None),
    ("lone-high-surrogate", b'{"model":"m","messages":[{"role":"user","content":"\\ud800"}]}', None),
    ("lone-low-surrogate", b'{"model":"m","messages":[{"role":"user","content":"\\udc00"}]}', None),
    ("invalid-utf8", b'{"model":"m","messages":[{"role":"user","content":"\xff"}]}', None),
    ("encoded-surrogate", b'{"model":"m","messages":[{"role":"user","content":"\xed\xa0\x80"}]}', None),
    ("nan", b'{"model":"m","temperature":NaN,"messages":[]}', None),
    ("infinite-number", b'{"model":"m","messages":[],"top_p":1e400}', None),
    (
        "nested-too-deep",
        b'{"model":"m","messages":[{"role":"user","content":"hi"}],"x":' + b"[" * 300 + b"]" * 300 + b"}",
        None,
    ),
    (
        "max-tokens-past-64-bits",
        b'{"model":"m","messages":[],"max_tokens":18446744073709551617}',
        "max_tokens",
    ),
    ("max-tokens-as-exponent", b'{"model":"m","messages":[],"max_tokens":1e3}', "max_tokens"),
]


@pytest.mark.parametrize(("raw", "param"), [pytest.param(r, p, id=c) for c, r, p in REFUSED])
async def test_bodies_parsers_disagree_on_are_refused(
    harness: Harness, first_wins: FakeUpstream, raw: bytes, param: str | None
) -> None:
    await harness.start(keyed(harness.dir, first_wins.url, cache={"scope": "Tier"}))
    status, headers, answer = await post_raw(harness, raw, bearer(ALICE))
    assert status == 400 and headers["Content-Type"].startswith("application/json"), answer
    error = json.loads(answer)["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert first_wins.stats.received == 0


POISON = [
    pytest.param(f'{{"model":"m","temperature":0,"messages":[{EVIL}],"messages":[{BENIGN}]}}', id="messages"),
    pytest.param(
        '{"model":"m","temperature":0,"messages":[{"role":"user","content":"EVIL","content":"benign"}]}',
        id="nested-content",
    ),
]


@pytest.mark.parametrize("raw", POISON)
async def test_a_tier_cache_cannot_be_poisoned_by_a_duplicate_key(
    harness: Harness, first_wins: FakeUpstream, raw: str
) -> None:
    """Alice's body is keyed as the benign request; the entry must hold the benign request's answer, so
    that Bob, of the same tier, asking the benign request (with the official SDK) is answered it."""
    await harness.start(keyed(harness.dir, first_wins.url, cache={"scope": "Tier"}))
    status, _, answer = await post_raw(harness, raw.encode(), bearer(ALICE))
    assert status == 200 and json.loads(answer)["choices"][0]["message"]["content"] == "benign"
    bob = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key=BOB, max_retries=0, timeout=10)
    async with bob:
        reply = await bob.chat.completions.with_raw_response.create(
            model="m", temperature=0, messages=[{"role": "user", "content": "benign"}]
        )
    assert reply.headers["x-llmroute-cache"] == "hit" and first_wins.stats.received == 1
    assert reply.parse().choices[0].message.content == "benign"
