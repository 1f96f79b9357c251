"""Rate limits: GCRA arithmetic, 429s with OpenAI's headers, per-tier and per-client, token correction."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmroute.core.gcra import LimitCheck, evaluate, fmt_duration, status
from llmroute.proxy.limits import LocalLimiter
from llmroute.proxy.quota import parse_duration
from llmroute.testing.fake_upstream import FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, eventually, metric, ready_hash, reloaded_from, tier, upstream


def test_gcra_requests_rate_and_burst() -> None:
    check = LimitCheck("k", 600, 1.0, "requests")  # 10/s, burst 1 s = 10 requests
    limiter = LocalLimiter()
    admitted = sum(limiter.admit((check,), 100.0).allowed for _ in range(25))
    assert admitted == 10
    # over 10 more seconds at 1 request per ms, exactly 10/s more get through
    more = sum(limiter.admit((check,), 100.0 + i / 1000).allowed for i in range(1, 10_001))
    assert more == 100


def test_gcra_tokens_are_debt_based_and_corrected() -> None:
    check = LimitCheck("t", 6000, 5000.0, "tokens")  # 100 tokens/s; one request far above the burst
    limiter = LocalLimiter()
    assert limiter.admit((check,), 0.0).allowed
    verdict = limiter.admit((check,), 0.0)
    assert not verdict.allowed and 48 < verdict.retry_after < 50
    limiter.correct((check,), -4990.0, 0.0)  # the response said only 10 tokens were used
    assert limiter.admit((check,), 0.2).allowed


def test_all_or_nothing_and_headers() -> None:
    tier_check = LimitCheck("tier", 60000, 1.0, "requests")
    client_check = LimitCheck("client", 60, 1.0, "requests")
    limiter = LocalLimiter()
    assert limiter.admit((tier_check, client_check), 0.0).allowed
    refused = limiter.admit((tier_check, client_check), 0.0)
    assert not refused.allowed
    headers = refused.headers()
    assert headers["x-ratelimit-limit-requests"] == "60"  # the tightest limit is reported
    # what is left of the minute's allowance (59 of 60), though the second request within a second is
    # refused: the allowance is enforced smoothly, and Retry-After says when the next one fits
    assert headers["x-ratelimit-remaining-requests"] == "59"
    assert headers["x-ratelimit-reset-requests"] == "1s"
    assert headers["Retry-After"] == "1" and headers["retry-after-ms"] == "1000"
    # the refused request did not consume the tier's budget
    ok, _, _ = evaluate(0.0, 0.0, tier_check)
    assert ok and status(tier_check, 0.001, 0.0).remaining == 59999


def test_reset_format() -> None:
    assert fmt_duration(0.25) == "250ms"
    assert fmt_duration(1.5) == "1.5s"
    assert fmt_duration(360) == "6m0s"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.0004, "1ms"),
        (0.9996, "1s"),  # not 1000ms
        (59.9996, "1m0s"),  # not 60s
        (119.6, "1m59.6s"),  # not 1m60s
        (3599.7, "59m59.7s"),  # not 59m60s
        (3600.0, "1h0m0s"),  # not 60m0s
        (3723.5, "1h2m3.5s"),
    ],
)
def test_reset_format_carries_every_field_as_go_does(seconds: float, text: str) -> None:
    assert fmt_duration(seconds) == text


@given(st.floats(min_value=0.0, max_value=1e7, allow_nan=False))
def test_reset_is_a_go_duration_of_the_debt_rounded_up_to_the_millisecond(seconds: float) -> None:
    text = fmt_duration(seconds)
    parsed = parse_duration(text)
    assert parsed is not None and seconds - 1e-6 <= parsed < seconds + 0.001 + 1e-6
    fields = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)(?:\.\d+)?s|(\d+)ms)", text)
    assert fields is not None, text
    hours, minutes, secs, ms = fields.groups()
    assert int(minutes or 0) < 60 and int(secs or 0) < 60 and int(ms or 0) < 1000
    assert hours is None or minutes is not None  # Go writes 1h0m0s, never 1h0s


def limited(tmp: Path, fake: FakeUpstream, **tier_limits: Any) -> dict[str, Any]:
    keys = tmp / "keys"
    keys.write_text("key-1\nkey-2\n")
    return config(upstream(fake.url), limits={"tiers": [tier("free", apiKeysFile=str(keys), **tier_limits)]})


async def test_429_with_openai_headers(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(limited(harness.dir, fake, requestsPerMinute=60, tokensPerMinute=100000))
    auth = {"Authorization": "Bearer key-1"}
    status, headers, _ = await harness.chat(headers=auth)
    assert status == 200
    assert headers["x-ratelimit-limit-requests"] == "60" and headers["x-ratelimit-remaining-requests"] == "59"
    assert headers["x-ratelimit-limit-tokens"] == "100000" and "x-ratelimit-reset-tokens" in headers
    status, headers, body = await harness.chat(headers=auth)
    assert status == 429
    assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["type"] == "requests"
    assert int(headers["Retry-After"]) >= 1 and headers["x-ratelimit-remaining-requests"] == "59"
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    text = await harness.metrics()
    assert metric(text, "llmroute_ratelimited_total", route="ns/r", tier="free") == 1
    assert metric(text, "llmroute_requests_total", tier="free", code="429") == 1
    assert fake.stats.received == 1


async def test_per_client_limit(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(limited(harness.dir, fake, requestsPerMinute=6000, clientRequestsPerMinute=60))
    assert (await harness.chat(headers={"Authorization": "Bearer key-1"}))[0] == 200
    assert (await harness.chat(headers={"Authorization": "Bearer key-1"}))[0] == 429
    assert (await harness.chat(headers={"Authorization": "Bearer key-2"}))[0] == 200


async def test_token_limit_and_correction_from_usage(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(limited(harness.dir, fake, tokensPerMinute=6000))  # 100 tokens/s
    auth = {"Authorization": "Bearer key-1"}
    # estimated at ~5000 tokens, but the upstream reports ~20: the charge is corrected, so the next passes
    for _ in range(3):
        assert (await harness.chat(headers=auth, max_tokens=5000))[0] == 200
    # a stream's usage is taken from the events it relays
    assert (await harness.chat(headers=auth, max_tokens=5000, stream=True))[0] == 200
    fake.default.chunks = 20000  # now the upstream really uses 20000 tokens: the next request must wait
    assert (await harness.chat(headers=auth))[0] == 200
    status, _, body = await harness.chat(headers=auth)
    assert status == 429 and body["error"]["type"] == "tokens"


async def test_a_raised_limit_frees_a_limited_client(harness: Harness, fake: FakeUpstream) -> None:
    """Raising a tier's limit by hot reload frees a client the old limit refuses, as far as the new rate
    allows: its one request is a tenth of a second at 600/min, not the minute it was at 1/min."""
    await harness.start(limited(harness.dir, fake, requestsPerMinute=1))
    auth = {"Authorization": "Bearer key-1"}
    assert (await harness.chat(headers=auth))[0] == 200
    status, headers, _ = await harness.chat(headers=auth)
    assert status == 429 and int(headers["Retry-After"]) > 50
    first = await ready_hash(harness)
    harness.write(limited(harness.dir, fake, requestsPerMinute=600))
    await eventually(lambda: reloaded_from(harness, first))
    status, headers, _ = await harness.chat(headers=auth)
    assert status == 200, f"refused after the limit was raised: Retry-After {headers.get('Retry-After')}"
    assert headers["x-ratelimit-limit-requests"] == "600"
    assert headers["x-ratelimit-remaining-requests"] == "598"  # both requests count, at the new rate
