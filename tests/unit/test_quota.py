"""Hosted APIs' rate-limit headers as OpenAI and Azure OpenAI send them, and the headroom they imply."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from multidict import CIMultiDict

from llmroute.proxy.quota import (
    STALE_AFTER_SECONDS,
    Limit,
    QuotaState,
    parse_duration,
    read_limits,
    retry_after,
)
from llmroute.testing.fake_quota import go_duration

# the sample values of OpenAI's rate-limit guide
OPENAI = {
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-reset-tokens": "6m0s",
}
# Azure OpenAI: remaining requests without a limit; tokens with limit and reset in seconds
AZURE = {
    "x-ratelimit-remaining-requests": "119",
    "x-ratelimit-limit-tokens": "120000",
    "x-ratelimit-remaining-tokens": "90000",
    "x-ratelimit-reset-tokens": "37",
}
# Azure's Responses API at times: "not reported"
AZURE_UNREPORTED = {
    "x-ratelimit-limit-tokens": "-1",
    "x-ratelimit-remaining-tokens": "-1",
    "x-ratelimit-reset-tokens": "0",
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("59.876s", 59.876),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("37", 37.0),  # Azure: plain seconds
        ("0.5", 0.5),
        ("-1", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_reset_durations(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_openai_headers() -> None:
    assert read_limits(CIMultiDict(OPENAI)) == {
        "requests": Limit(remaining=59, limit=60, reset=1.0),
        "tokens": Limit(remaining=149984, limit=150000, reset=360.0),
    }


def test_azure_headers() -> None:
    assert read_limits(CIMultiDict(AZURE)) == {
        "requests": Limit(remaining=119, limit=None, reset=None),
        "tokens": Limit(remaining=90000, limit=120000, reset=37.0),
    }


def test_headers_are_case_insensitive_as_http_says() -> None:
    headers = CIMultiDict({"X-RateLimit-Remaining-Requests": "5", "X-RateLimit-Limit-Requests": "10"})
    assert read_limits(headers) == {"requests": Limit(remaining=5, limit=10, reset=None)}


def test_unreported_and_absent_quota_reads_as_nothing() -> None:
    assert read_limits(CIMultiDict(AZURE_UNREPORTED)) == {}
    assert read_limits(CIMultiDict({"content-type": "application/json"})) == {}
    state = QuotaState()
    state.observe(200, CIMultiDict(AZURE_UNREPORTED), now=0.0, wall_now=0.0)
    assert state.headroom(0.0) is None


def test_headroom_is_the_tighter_dimension_and_refills_over_the_reset_time() -> None:
    state = QuotaState()
    headers = {**OPENAI, "x-ratelimit-remaining-requests": "30", "x-ratelimit-reset-requests": "30s"}
    state.observe(200, CIMultiDict(headers), now=10.0, wall_now=0.0)
    assert state.headroom(10.0) == pytest.approx(0.5)  # requests 30/60, tokens ~1.0
    assert state.headroom(25.0) == pytest.approx(0.75)  # half of the reset time: half of the gap back
    assert state.headroom(40.0) == pytest.approx(149984 / 150000 + 16 / 150000 * 30 / 360)


def test_requests_sent_since_the_latest_answer_are_counted_against_it() -> None:
    state = QuotaState()
    headers = {**OPENAI, "x-ratelimit-reset-requests": "1h0m0s", "x-ratelimit-reset-tokens": "1h0m0s"}
    state.observe(200, CIMultiDict(headers), now=0.0, wall_now=0.0)
    for _ in range(29):
        state.dispatched(tokens=100)
    assert state.headroom(0.0) == pytest.approx(30 / 60)
    state.observe(200, CIMultiDict(headers), now=1.0, wall_now=0.0)  # a fresh answer has counted them
    assert state.headroom(1.0) == pytest.approx(59 / 60)


def test_a_reading_long_past_its_reset_is_forgotten() -> None:
    """An upstream that stops sending the headers: the requests sent since its last reading were counted
    against it for good, and after a day of traffic its headroom read 0 (the scorer's worst) for ever."""
    state = QuotaState()
    state.observe(200, CIMultiDict(OPENAI), now=0.0, wall_now=0.0)  # resets: requests 1 s, tokens 6 min
    for _ in range(100_000):
        state.dispatched(tokens=100)
    assert state.headroom(1.0) == 0.0  # a burst beyond the reading: no headroom left, as estimated
    assert state.headroom(360.0 + STALE_AFTER_SECONDS - 1) == 0.0  # the token reading still stands
    assert state.headroom(360.0 + STALE_AFTER_SECONDS + 1) is None  # then: not reported, not 0
    state.observe(200, CIMultiDict(OPENAI), now=86_400.0, wall_now=0.0)  # headers again: read afresh
    assert state.headroom(86_400.0) == pytest.approx(59 / 60)


def test_a_missing_limit_is_learned_as_the_largest_remaining_seen() -> None:
    state = QuotaState()
    state.observe(200, CIMultiDict(AZURE), now=0.0, wall_now=0.0)
    state.observe(200, CIMultiDict({**AZURE, "x-ratelimit-remaining-requests": "60"}), now=1.0, wall_now=0.0)
    assert state.headroom(1.0) == pytest.approx(60 / 119)


def test_a_429_cools_the_upstream_down_for_retry_after_ms_first() -> None:
    state = QuotaState()
    headers = CIMultiDict({**AZURE, "retry-after-ms": "2500", "retry-after": "3"})
    state.observe(429, headers, now=100.0, wall_now=0.0)
    assert state.cooling(102.4) and not state.cooling(102.6)


@pytest.mark.parametrize(
    ("headers", "until"),
    [
        ({"Retry-After": "7"}, 107.0),
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "4s"}, 104.0),
        ({}, 101.0),  # nothing said: one second
    ],
)
def test_a_429_cools_down_by_retry_after_else_the_reset_else_a_second(
    headers: dict[str, str], until: float
) -> None:
    state = QuotaState()
    state.observe(429, CIMultiDict(headers), now=100.0, wall_now=0.0)
    assert state.cooldown_until == pytest.approx(until)


def test_retry_after_as_an_http_date() -> None:
    when = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    headers = CIMultiDict({"Retry-After": format_datetime(when, usegmt=True)})
    assert retry_after(headers, now) == pytest.approx(30.0)
    assert retry_after(CIMultiDict({"Retry-After": "tomorrow"}), now) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.02, "20ms"), (1, "1s"), (1.5, "1.5s"), (360, "6m0s"), (3723.5, "1h2m3.5s")],
)
def test_the_fake_writes_go_durations_the_parser_reads_back(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)
