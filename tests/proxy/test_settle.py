"""Every way a request ends settles its charge: the caller's limits end at what the request used, the
metrics name the upstream really tried, and llmroute's own refusals give the request back.

Each ending is driven on real sockets through the fake upstream; the request's :class:`Outcome` (what the
settle step recorded) and the limiter's state afterwards are both checked. The limiter state is read as
its debt (seconds ahead of now): charged ``c`` tokens at 100 tokens/s at admission time ``t``, the debt
at ``now`` is ``t + c/100 - now`` — bounded by the times the test sent the request and saw it end.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from llmroute.proxy.outcome import Outcome
from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness, free_port
from tests.proxy.support import config, eventually, metric, tier, upstream

KEY = "sk-client"
RPM, TPM = 60, 6000  # one request a second, 100 tokens a second
FAST = {"connectSeconds": 1, "firstByteSeconds": 0.4, "idleSeconds": 0.4, "totalSeconds": 3}


def limited(tmp: Path, url: str, rpm: int = RPM, tpm: int = TPM, **kw: Any) -> dict[str, Any]:
    (tmp / "keys").write_text(f"{KEY}\n")
    team = tier("team", apiKeysFile=str(tmp / "keys"), requestsPerMinute=rpm, tokensPerMinute=tpm)
    return config(upstream(url, **kw.pop("up", {})), limits={"tiers": [team]}, timeouts=FAST, **kw)


@dataclass(frozen=True)
class Ending:
    id: str
    behavior: FakeBehavior
    body: dict[str, Any]
    leave: str  # "read" (to the end), "events" (after three events), "early" (after 0.3 s, nothing read)
    status: int
    upstream: str
    source: str  # where the charged tokens come from
    refunded: bool  # whether the request itself is given back
    tokens_out: int | None = None  # the output tokens charged, when known exactly
    config: dict[str, Any] = field(default_factory=dict)


STREAM = {"stream": True}
ENDINGS = [
    Ending("completed", FakeBehavior(), {}, "read", 200, "a", "reported", False, 3),
    Ending("completed-stream", FakeBehavior(), STREAM, "read", 200, "a", "reported", False, 3),
    Ending(
        "client-left-mid-stream",
        FakeBehavior(chunks=100, chunk_delay=0.05),
        {**STREAM, "max_tokens": 100000},
        "events",
        499,
        "a",
        "counted",
        False,
    ),
    Ending(
        "client-left-before-the-answer",
        FakeBehavior(latency=5),
        {"max_tokens": 100000},
        "early",
        499,
        "a",
        "estimated",
        False,
        0,
    ),
    Ending(
        "upstream-timed-out",
        FakeBehavior(fail="hang"),
        {"max_tokens": 100000},
        "read",
        504,
        "a",
        "estimated",
        False,
        0,
    ),
    Ending(
        "upstream-error",
        FakeBehavior(status=500),
        {"max_tokens": 100000},
        "read",
        500,
        "a",
        "none",
        False,
        0,
        {"passiveHealth": {"retries": 0, "retryOnStatus": []}},
    ),
    Ending(
        "upstream-error-under-200",
        FakeBehavior(shape="error_body"),
        {"max_tokens": 100000},
        "read",
        200,
        "a",
        "estimated",
        False,
    ),
    Ending("stream-cut", FakeBehavior(fail="truncate", chunks=6), STREAM, "read", 502, "a", "counted", False),
    Ending(
        "stream-stalled",
        FakeBehavior(fail="stall", stall_after=2, chunks=10),
        STREAM,
        "read",
        502,
        "a",
        "counted",
        False,
    ),
    Ending("upstream-unreachable", FakeBehavior(), {}, "read", 502, "a", "none", True, 0, {"dead": True}),
    Ending(
        "no-upstream-available",
        FakeBehavior(),
        {},
        "read",
        503,
        "none",
        "none",
        True,
        0,
        {"up": {"weight": 0}},
    ),
]


async def send(h: Harness, body: dict[str, Any], leave: str) -> None:
    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession() as client:  # its own connection, so that leaving closes it
        if leave == "early":
            task = asyncio.ensure_future(
                client.post(h.url + "/v1/chat/completions", json=payload, headers=headers)
            )
            await asyncio.sleep(0.3)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return
        resp = await client.post(h.url + "/v1/chat/completions", json=payload, headers=headers)
        if leave == "events":
            for _ in range(3):
                await resp.content.readuntil(b"\n\n")
            resp.close()
            return
        await resp.read()


@pytest.mark.parametrize("ending", ENDINGS, ids=lambda e: e.id)
async def test_every_ending_settles_what_was_used(
    harness: Harness, fake: FakeUpstream, ending: Ending
) -> None:
    extra = dict(ending.config)
    url = f"http://127.0.0.1:{free_port()}/v1" if extra.pop("dead", False) else fake.url
    server = await harness.start(limited(harness.dir, url, **extra))
    outcomes: list[Outcome] = []
    assert server.proxy.api is not None
    server.proxy.api.observers.append(outcomes.append)
    fake.default = ending.behavior
    sent = time.monotonic()
    await send(harness, ending.body, ending.leave)
    await eventually(lambda: len(outcomes) == 1)
    ended = time.monotonic()
    outcome = outcomes[0]
    assert (outcome.status, outcome.upstream, outcome.usage_source) == (
        ending.status,
        ending.upstream,
        ending.source,
    )
    assert outcome.attempts == (0 if ending.upstream == "none" else 1)
    if ending.tokens_out is not None:
        assert outcome.tokens_out == ending.tokens_out
    if ending.source in ("counted", "estimated"):
        assert outcome.tokens_out < 100  # what was relayed, not the 100000 the request allowed
    if ending.source == "counted":
        assert outcome.tokens_out > 0
    if ending.source == "none":
        assert outcome.tokens_in == outcome.tokens_out == 0
    else:
        assert outcome.tokens_in > 0
    # the limits hold exactly what the outcome says was used (debts decay as time passes)
    local = server.proxy.limiter.local
    now = time.monotonic()
    charged = (outcome.tokens_in + outcome.tokens_out) / (TPM / 60)
    assert (
        max(0.0, sent + charged - now) - 0.02
        <= local.debt("t|team|t", now)
        <= max(0.0, ended + charged - now)
    )
    requests = 0.0 if ending.refunded else 60 / RPM
    assert (
        max(0.0, sent + requests - now) - 0.02
        <= local.debt("t|team|r", now)
        <= max(0.0, ended + requests - now)
    )
    # the metrics name the upstream really tried, with the tokens charged
    text = await harness.metrics()
    assert metric(text, "llmroute_requests_total", upstream=ending.upstream, code=str(ending.status)) == 1
    assert metric(text, "llmroute_tokens_total", direction="output") == outcome.tokens_out
    assert metric(text, "llmroute_tokens_total", direction="input") == outcome.tokens_in


async def test_a_client_that_leaves_does_not_lock_its_tier_out(harness: Harness, fake: FakeUpstream) -> None:
    """The issue's example: 6000 tokens/min, ``max_tokens: 100000``, the client leaves after a second."""
    await harness.start(limited(harness.dir, fake.url))
    fake.default = FakeBehavior(chunks=1000, chunk_delay=0.05)
    payload = {
        "model": "m",
        "stream": True,
        "max_tokens": 100000,
        "messages": [{"role": "user", "content": "x"}],
    }
    auth = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession() as client:
        resp = await client.post(harness.url + "/v1/chat/completions", json=payload, headers=auth)
        await resp.content.readuntil(b"\n\n")
        await asyncio.sleep(1.0)
        resp.close()
    await eventually(lambda: fake.stats.cancelled == 1)
    fake.default = FakeBehavior()

    async def admitted() -> bool:  # within a second or two (one request a second), not 17 minutes
        return (await harness.chat(headers=auth))[0] == 200

    await eventually(admitted, within=3, interval=0.2)
    text = await harness.metrics()
    assert metric(text, "llmroute_requests_total", upstream="a", code="499") == 1
    assert 0 < metric(text, "llmroute_tokens_total", direction="output") < 100


async def test_retries_are_recorded_on_the_upstream_that_answered(
    harness: Harness, fake: FakeUpstream, fake_b: FakeUpstream
) -> None:
    server = await harness.start(config(upstream(fake.url), upstream(fake_b.url, name="b", group=1)))
    outcomes: list[Outcome] = []
    assert server.proxy.api is not None
    server.proxy.api.observers.append(outcomes.append)
    fake.default = FakeBehavior(fail="reset")
    assert (await harness.chat())[0] == 200
    assert (outcomes[0].upstream, outcomes[0].attempts, outcomes[0].retries) == ("b", 2, 1)


async def test_shed_requests_are_given_back(harness: Harness, fake: FakeUpstream) -> None:
    server = await harness.start(
        limited(
            harness.dir,
            fake.url,
            rpm=600,
            tpm=600_000,
            admission={"maxConcurrency": 1, "queueTimeoutSeconds": 0},
        )
    )
    outcomes: list[Outcome] = []
    assert server.proxy.api is not None
    server.proxy.api.observers.append(outcomes.append)
    fake.default = FakeBehavior(latency=0.3)
    auth = {"Authorization": f"Bearer {KEY}"}
    occupant = asyncio.ensure_future(harness.chat(headers=auth, user="occupant"))
    await eventually(lambda: fake.stats.active == 1)
    before = server.proxy.limiter.local.debt("t|team|r", time.monotonic())
    status, _, body = await harness.chat(headers=auth, user="shed")
    assert status == 503 and body["error"]["code"] == "overloaded"
    shed = next(o for o in outcomes if o.status == 503)
    assert (shed.upstream, shed.error, shed.tokens_in, shed.tokens_out) == ("none", "overloaded", 0, 0)
    # the shed request gave its request back: the debt is what the occupant left, decayed
    assert server.proxy.limiter.local.debt("t|team|r", time.monotonic()) <= before
    assert (await occupant)[0] == 200


async def test_cache_hits_charge_no_tokens_but_count_the_request(
    harness: Harness, fake: FakeUpstream
) -> None:
    server = await harness.start(limited(harness.dir, fake.url))
    outcomes: list[Outcome] = []
    assert server.proxy.api is not None
    server.proxy.api.observers.append(outcomes.append)
    auth = {"Authorization": f"Bearer {KEY}"}
    assert (await harness.chat(headers=auth, temperature=0))[0] == 200
    await asyncio.sleep(1.0)  # let the one-a-second request limit admit the next
    status, headers, _ = await harness.chat(headers=auth, temperature=0)
    assert status == 200 and headers["x-llmroute-cache"] == "hit"
    hit = outcomes[1]
    assert (hit.cache, hit.upstream, hit.tokens_in, hit.tokens_out, hit.usage_source) == (
        "hit",
        "none",
        0,
        0,
        "none",
    )
    assert server.proxy.limiter.local.debt("t|team|r", time.monotonic()) > 0.5  # the hit counted as a request


HUGE = [
    # (the request's output bound, as a client may send it): the estimate is bounded, so the settle step
    # lands exactly on what was used (a float charge of ~1e21 tokens would lose whole minutes on correction)
    pytest.param({"max_tokens": 10**12}, id="max-tokens-1e12"),
    pytest.param({"max_tokens": 2**62, "n": 128}, id="max-tokens-2^62-n-128"),
    pytest.param({"max_completion_tokens": 2**64 - 1}, id="max-completion-tokens-u64-max"),
    pytest.param({"max_tokens": 2**64 - 1, "n": 128, "stream": True}, id="stream-u64-max-n-128"),
]


@pytest.mark.parametrize("body", HUGE)
async def test_a_huge_output_bound_settles_exactly(
    harness: Harness, fake: FakeUpstream, body: dict[str, Any]
) -> None:
    server = await harness.start(limited(harness.dir, fake.url, rpm=600))
    outcomes: list[Outcome] = []
    assert server.proxy.api is not None
    server.proxy.api.observers.append(outcomes.append)
    sent = time.monotonic()
    status, _, _ = await harness.chat(headers={"Authorization": f"Bearer {KEY}"}, **body)
    assert status == 200
    await eventually(lambda: len(outcomes) == 1)
    ended, now = time.monotonic(), time.monotonic()
    charged = (outcomes[0].tokens_in + outcomes[0].tokens_out) / (TPM / 60)
    debt = server.proxy.limiter.local.debt("t|team|t", now)
    assert max(0.0, sent + charged - now) - 0.02 <= debt <= max(0.0, ended + charged - now)
    # and the tier is open again at once for everybody else
    assert (await harness.chat(headers={"Authorization": f"Bearer {KEY}"}))[0] == 200
