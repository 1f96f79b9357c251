"""A changed limit takes effect on the limiters already running: what they admitted counts as the same
number of units under the new limit. Before, a limiter kept its debt in seconds of the *old* rate: a
client that had used its 1 request/min stayed refused for a minute after its limit was raised to 600/min,
and one that had used 9,000 of 10,000 tokens/min for most of a minute after a raise to 100,000."""

from __future__ import annotations

import json
import time

import pytest

from llmroute.proxy.limits import LocalLimiter, build_checks, limit_kind, local_limits
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.ratelimit import RateLimiter
from llmroute.proxy.snapshot import ConfigSnapshot, parse
from llmroute.spec.proxyconfig import TierConfig

CLIENT = b"\x01" * 32


def _admit(limiter: LocalLimiter, tier: TierConfig, tokens: float, now: float) -> bool:
    return limiter.admit(build_checks(tier, CLIENT, tokens, False, 1), now).allowed


def test_check_keys_name_the_limit_they_enforce() -> None:
    tier = TierConfig(name="free", requests_per_minute=6, client_tokens_per_minute=60)
    kinds = {limit_kind(c.key) for c in build_checks(tier, CLIENT, 1.0, False, 1)}
    assert kinds == {("t", "free", "r"), ("c", "free", "t")}
    assert local_limits([tier]) == {("t", "free", "r"): 6, ("c", "free", "t"): 60}


def test_a_raised_request_limit_admits_at_the_new_rate_at_once() -> None:
    old = TierConfig(name="free", requests_per_minute=1)
    new = TierConfig(name="free", requests_per_minute=600)
    limiter = LocalLimiter()
    assert _admit(limiter, old, 1.0, 100.0)
    assert not _admit(limiter, old, 1.0, 100.5)  # one a minute
    limiter.rescale(local_limits([old]), local_limits([new]), 100.5)
    # the one request admitted is a tenth of a second at 600/min: the next fits now
    assert _admit(limiter, new, 1.0, 100.5)
    admitted = sum(_admit(limiter, new, 1.0, 100.5) for _ in range(20))
    assert admitted == 8  # a fresh limiter's one-second burst (10), less the two already admitted


def test_a_raised_token_limit_frees_a_client_in_debt() -> None:
    old = TierConfig(name="free", tokens_per_minute=10_000)
    new = TierConfig(name="free", tokens_per_minute=100_000)
    limiter = LocalLimiter()
    assert _admit(limiter, old, 9_000.0, 0.0)  # 54 s of debt at 10,000/min
    assert not _admit(limiter, old, 100.0, 1.0)
    limiter.rescale(local_limits([old]), local_limits([new]), 1.0)
    # 9,000 tokens are 5.4 s at 100,000/min: within the one-second burst from 4.4 s on, not 53 s
    assert not _admit(limiter, new, 100.0, 1.0)
    assert _admit(limiter, new, 100.0, 5.5)


def test_a_lowered_limit_charges_what_was_used_for_at_most_a_minute() -> None:
    old = TierConfig(name="free", tokens_per_minute=100_000, requests_per_minute=600)
    new = TierConfig(name="free", tokens_per_minute=10_000, requests_per_minute=1)
    limiter = LocalLimiter()
    assert _admit(limiter, old, 9_000.0, 0.0)  # 5.4 s at 100,000/min
    limiter.rescale(local_limits([old]), local_limits([new]), 0.0)
    assert not _admit(limiter, new, 1.0, 50.0)  # 9,000 tokens are 54 s at 10,000/min
    assert _admit(limiter, new, 1.0, 60.0)  # the requests limit: 0.1 s at 600/min is 60 s at 1/min


def test_a_removed_limit_or_tier_starts_afresh() -> None:
    old = [TierConfig(name="free", requests_per_minute=1), TierConfig(name="paid", requests_per_minute=1)]
    limiter = LocalLimiter()
    assert _admit(limiter, old[0], 1.0, 0.0) and _admit(limiter, old[1], 1.0, 0.0)
    unlimited = [TierConfig(name="free")]
    limiter.rescale(local_limits(old), local_limits(unlimited), 1.0)
    assert len(limiter) == 0  # nothing left of a limit that is gone
    assert _admit(limiter, old[0], 1.0, 1.0)  # one set again later is a new one
    assert _admit(limiter, old[1], 1.0, 1.0)


def _snapshot(tokens_per_minute: int) -> ConfigSnapshot:
    tiers = [{"name": "free", "tokensPerMinute": tokens_per_minute}]
    body = {
        "route": {"namespace": "ns", "name": "r"},
        "upstreams": [{"name": "a", "url": "http://a:8000/v1", "model": "m"}],
        "limits": {"tiers": tiers, "identity": "Unauthenticated", "defaultTier": "free"},
    }
    return parse(json.dumps(body))


def test_a_request_settling_after_a_limit_change_is_charged_at_the_new_rate() -> None:
    """Admitted at 6,000 tokens/min, settled 5,000 tokens over its estimate after a raise to 60,000: the
    limiter (carried over to the new rate) is charged 5 s, not the 50 s those tokens were at the old one."""
    limiter = RateLimiter(ProxyMetrics())
    limiter.configure(_snapshot(6_000))
    tier = TierConfig(name="free", tokens_per_minute=6_000)
    now = time.monotonic()
    verdict = limiter.local.admit(build_checks(tier, None, 100.0, False, 1), now)
    assert verdict.allowed and limiter.local.debt("t|free|t", now) == pytest.approx(1.0)
    limiter.configure(_snapshot(60_000))
    limiter.correct(verdict, 5_000.0)
    assert 4.5 < limiter.local.debt("t|free|t", now) < 5.5


def test_a_long_request_settles_its_usage_on_a_limiter_dropped_while_it_ran() -> None:
    """Admitted 10 s ago with an estimate of 100 tokens, a request settles 19,900 tokens over it after a
    reload dropped its limiter (its debt paid): the usage counts from the TAT its admission left, as if
    charged then (99.5 s at 12,000 tokens/min, 90 s of it still ahead), instead of going uncharged."""
    limiter = RateLimiter(ProxyMetrics())
    limiter.configure(_snapshot(6_000))
    tier = TierConfig(name="free", tokens_per_minute=6_000)
    start = time.monotonic() - 10.0
    verdict = limiter.local.admit(build_checks(tier, None, 100.0, False, 1), start)
    assert verdict.allowed
    limiter.configure(_snapshot(12_000))  # the limiter's debt was paid 9 s ago: dropped
    assert len(limiter.local) == 0
    limiter.correct(verdict, 19_900.0)
    assert 85.0 < limiter.local.debt("t|free|t", time.monotonic()) < 95.0
