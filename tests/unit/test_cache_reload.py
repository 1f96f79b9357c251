"""A reloaded cache config applies to the entries already held, as if it had been in force when they were
stored. Before, an entry kept the expiry of the TTL it was stored under: lowering ``ttlSeconds`` from an
hour to a minute kept serving hour-old answers, and a lowered ``maxEntryBytes`` kept entries above it."""

from __future__ import annotations

from llmroute.proxy.cache import ResponseCache
from llmroute.spec.proxyconfig import CacheConfig

KEY, BIG = b"k" * 32, b"b" * 32


def test_a_lowered_ttl_expires_entries_already_held() -> None:
    cache = ResponseCache(CacheConfig(ttl_seconds=3600))
    assert cache.put(KEY, b"{}", "application/json", 0.0)
    assert cache.get(KEY, 120.0) is not None
    cache.configure(CacheConfig(ttl_seconds=60))
    assert cache.get(KEY, 121.0) is None  # stored 121 s ago: older than the TTL now in force


def test_a_raised_ttl_keeps_entries_longer() -> None:
    cache = ResponseCache(CacheConfig(ttl_seconds=60))
    assert cache.put(KEY, b"{}", "application/json", 0.0)
    cache.configure(CacheConfig(ttl_seconds=3600))
    assert cache.get(KEY, 120.0) is not None


def test_a_lowered_entry_bound_drops_the_entries_above_it() -> None:
    cache = ResponseCache(CacheConfig(max_entry_bytes=10_000))
    assert cache.put(KEY, b"x" * 100, "application/json", 0.0)
    assert cache.put(BIG, b"x" * 5_000, "application/json", 0.0)
    cache.configure(CacheConfig(max_entry_bytes=1_000))
    assert cache.get(BIG, 1.0) is None and cache.get(KEY, 1.0) is not None
    assert len(cache) == 1 and cache.bytes == 100 + 32 + 200
