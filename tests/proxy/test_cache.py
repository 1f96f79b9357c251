"""Exact-match cache: what is reusable, bypass headers, errors never cached, TTL and byte bound."""

from __future__ import annotations

from typing import Any

from llmroute.proxy.cache import ResponseCache
from llmroute.spec.proxyconfig import CacheConfig
from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, eventually, metric, upstream

DET: dict[str, Any] = {"temperature": 0}


async def test_hit_and_miss(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url)))
    status, headers, first = await harness.chat(**DET)
    assert status == 200 and headers["x-llmroute-cache"] == "miss"
    # same request with keys in another order is the same entry
    body = {"temperature": 0, "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    status, headers, second = await harness.post("/v1/chat/completions", body)
    assert headers["x-llmroute-cache"] == "hit" and second == first
    assert fake.stats.received == 1
    assert metric(await harness.metrics(), "llmroute_requests_total", cache="hit", upstream="none") == 1


async def test_what_is_not_cached(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url), passiveHealth={"retries": 0}))
    assert "x-llmroute-cache" not in (await harness.chat())[1]  # not deterministic
    assert "x-llmroute-cache" not in (await harness.chat())[1]
    assert (await harness.chat(temperature=0.7, headers={"x-llmroute-cache": "on"}))[1][
        "x-llmroute-cache"
    ] == "miss"
    assert (await harness.chat(temperature=0.7, headers={"x-llmroute-cache": "on"}))[1][
        "x-llmroute-cache"
    ] == "hit"
    await harness.chat(stream=True, **DET)
    await harness.chat(stream=True, **DET)
    fake.push(FakeBehavior(status=500))
    assert (await harness.chat(user="e", **DET))[0] == 500  # errors are never cached
    status, headers, _ = await harness.chat(user="e", **DET)
    assert status == 200 and headers["x-llmroute-cache"] == "miss"
    assert fake.stats.received == 7  # 2 + 1 opt-in miss + 2 streams + error + retry


async def test_no_cache_bypasses_and_refreshes(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url)))
    await harness.chat(**DET)
    _status, headers, _ = await harness.chat(headers={"Cache-Control": "no-cache"}, **DET)
    assert headers["x-llmroute-cache"] == "miss" and fake.stats.received == 2
    assert (await harness.chat(headers={"Cache-Control": "no-store"}, **DET))[1].get(
        "x-llmroute-cache"
    ) is None
    assert (await harness.chat(**DET))[1]["x-llmroute-cache"] == "hit"
    assert fake.stats.received == 3


async def test_ttl_expiry(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url), cache={"ttlSeconds": 0.2}))
    await harness.chat(**DET)

    async def expired() -> bool:
        return (await harness.chat(**DET))[1]["x-llmroute-cache"] == "miss"

    await eventually(expired, within=5, interval=0.05)


def test_byte_bound_evicts_least_recently_used() -> None:
    cache = ResponseCache(CacheConfig(max_bytes=2000, max_entry_bytes=1000, ttl_seconds=60))
    for i in range(5):
        assert cache.put(bytes([i]) * 32, b"x" * 500, "application/json", 0.0)
        assert cache.bytes <= 2000
    assert len(cache) == 2 and cache.evictions == 3
    assert cache.get(bytes([4]) * 32, 1.0) is not None and cache.get(bytes([0]) * 32, 1.0) is None
    assert not cache.put(b"k" * 32, b"x" * 1001, "application/json", 0.0)  # above max_entry_bytes
