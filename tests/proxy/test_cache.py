"""Exact-match cache: what is reusable, bypass headers, TTL and byte bound; and the classes of fault a shared
cache invites — answering a caller the upstream would have refused, answering one client with another's
entry, and keeping anything but a complete success object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmroute.proxy.cache import ResponseCache, storable
from llmroute.spec.proxyconfig import CacheConfig
from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, eventually, metric, tier, upstream

DET: dict[str, Any] = {"temperature": 0}
ALICE, BOB, CAROL = "sk-alice", "sk-bob", "sk-carol"  # alice and bob in tier team, carol in tier other


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def keyed(tmp: Path, fake_url: str, **kw: Any) -> dict[str, Any]:
    """A route whose callers llmroute verifies itself (API keys in two tiers), with ``kw`` on top."""
    (tmp / "team").write_text(f"{ALICE}\n{BOB}\n")
    (tmp / "other").write_text(f"{CAROL}\n")
    tiers = [tier("team", apiKeysFile=str(tmp / "team")), tier("other", apiKeysFile=str(tmp / "other"))]
    return config(upstream(fake_url), limits={"tiers": tiers, **kw.pop("limits", {})}, **kw)


AUTH = bearer(ALICE)


async def test_hit_and_miss(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(keyed(harness.dir, fake.url))
    status, headers, first = await harness.chat(headers=AUTH, **DET)
    assert status == 200 and headers["x-llmroute-cache"] == "miss"
    # same request with keys in another order is the same entry
    body = {"temperature": 0, "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    status, headers, second = await harness.post("/v1/chat/completions", body, AUTH)
    assert headers["x-llmroute-cache"] == "hit" and second == first
    assert fake.stats.received == 1
    assert metric(await harness.metrics(), "llmroute_requests_total", cache="hit", upstream="none") == 1


async def test_what_is_not_cached(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(keyed(harness.dir, fake.url, passiveHealth={"retries": 0}))
    assert "x-llmroute-cache" not in (await harness.chat(headers=AUTH))[1]  # not deterministic
    assert "x-llmroute-cache" not in (await harness.chat(headers=AUTH))[1]
    opt_in = {**AUTH, "x-llmroute-cache": "on"}
    assert (await harness.chat(temperature=0.7, headers=opt_in))[1]["x-llmroute-cache"] == "miss"
    assert (await harness.chat(temperature=0.7, headers=opt_in))[1]["x-llmroute-cache"] == "hit"
    await harness.chat(stream=True, headers=opt_in, **DET)
    await harness.chat(stream=True, headers=opt_in, **DET)
    fake.push(FakeBehavior(status=500))
    assert (await harness.chat(user="e", headers=AUTH, **DET))[0] == 500  # errors are never cached
    status, headers, _ = await harness.chat(user="e", headers=AUTH, **DET)
    assert status == 200 and headers["x-llmroute-cache"] == "miss"
    assert fake.stats.received == 7  # 2 + 1 opt-in miss + 2 streams + error + retry


async def test_no_cache_bypasses_and_refreshes(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(keyed(harness.dir, fake.url))
    await harness.chat(headers=AUTH, **DET)
    _status, headers, _ = await harness.chat(headers={**AUTH, "Cache-Control": "no-cache"}, **DET)
    assert headers["x-llmroute-cache"] == "miss" and fake.stats.received == 2
    no_store = {**AUTH, "Cache-Control": "no-store"}
    assert (await harness.chat(headers=no_store, **DET))[1].get("x-llmroute-cache") is None
    assert (await harness.chat(headers=AUTH, **DET))[1]["x-llmroute-cache"] == "hit"
    assert fake.stats.received == 3


async def test_ttl_expiry(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(keyed(harness.dir, fake.url, cache={"ttlSeconds": 0.2}))
    await harness.chat(headers=AUTH, **DET)

    async def expired() -> bool:
        return (await harness.chat(headers=AUTH, **DET))[1]["x-llmroute-cache"] == "miss"

    await eventually(expired, within=5, interval=0.05)


def test_byte_bound_evicts_least_recently_used() -> None:
    cache = ResponseCache(CacheConfig(max_bytes=2000, max_entry_bytes=1000, ttl_seconds=60))
    for i in range(5):
        assert cache.put(bytes([i]) * 32, b"x" * 500, "application/json", 0.0)
        assert cache.bytes <= 2000
    assert len(cache) == 2 and cache.evictions == 3
    assert cache.get(bytes([4]) * 32, 1.0) is not None and cache.get(bytes([0]) * 32, 1.0) is None
    assert not cache.put(b"k" * 32, b"x" * 1001, "application/json", 0.0)  # above max_entry_bytes


# --- callers llmroute did not verify are never answered from the cache ---------------------------------


def unauthenticated(tmp: Path, url: str) -> dict[str, Any]:
    """No tiers: the client's own key goes upstream, which checks it (llmroute cannot)."""
    return config(upstream(url), limits={"identity": "Unauthenticated"})


def header_tiers(tmp: Path, url: str) -> dict[str, Any]:
    """Tiers named by a header a front end sets: the key, again, is only checked upstream."""
    return config(upstream(url), limits={"identity": "Header", "tiers": [tier("team")]})


def default_tier(tmp: Path, url: str) -> dict[str, Any]:
    """API keys, but a caller without one lands in the default tier; the route shares its entries."""
    return keyed(tmp, url, limits={"defaultTier": "other"}, cache={"scope": "Route"})


TEAM = {"x-llmroute-tier": "team"}
UNVERIFIED = [
    # (route, the first caller's headers, then a caller the upstream refuses or llmroute did not verify)
    pytest.param(unauthenticated, bearer("good"), bearer("wrong"), 401, id="no-tiers-wrong-key"),
    pytest.param(unauthenticated, bearer("good"), {}, 401, id="no-tiers-no-key"),
    pytest.param(
        header_tiers, {**TEAM, **bearer("good")}, {**TEAM, **bearer("wrong")}, 401, id="header-tier"
    ),
    pytest.param(default_tier, AUTH, {}, 200, id="keyless-default-tier"),
]


@pytest.mark.parametrize(("route", "first", "second", "status"), UNVERIFIED)
async def test_unverified_callers_are_never_answered_from_the_cache(
    harness: Harness,
    fake: FakeUpstream,
    route: Any,
    first: dict[str, str],
    second: dict[str, str],
    status: int,
) -> None:
    fake.default = FakeBehavior(auth="good" if status == 401 else None)
    await harness.start(route(harness.dir, fake.url))
    assert (await harness.chat(headers=first, **DET))[0] == 200
    got, headers, body = await harness.chat(headers=second, **DET)
    assert got == status and headers.get("x-llmroute-cache") != "hit"  # the upstream was asked
    assert fake.stats.received == 2
    if status == 401:
        assert body["error"]["code"] == "invalid_api_key"


# --- entries do not cross clients unless the route says they may -----------------------------------------

SCOPES = [
    # (cache.scope, caller after alice stored the answer, whether that caller gets alice's entry)
    pytest.param("Client", ALICE, True, id="client-same-client"),
    pytest.param("Client", BOB, False, id="client-other-client-same-tier"),
    pytest.param("Client", CAROL, False, id="client-other-tier"),
    pytest.param("Tier", BOB, True, id="tier-same-tier"),
    pytest.param("Tier", CAROL, False, id="tier-other-tier"),
    pytest.param("Route", CAROL, True, id="route-other-tier"),
]


@pytest.mark.parametrize(("scope", "caller", "shared"), SCOPES)
async def test_entries_are_scoped_to_the_client_unless_shared_on_purpose(
    harness: Harness, fake: FakeUpstream, scope: str, caller: str, shared: bool
) -> None:
    await harness.start(keyed(harness.dir, fake.url, cache={"scope": scope}))
    assert (await harness.chat(headers=bearer(ALICE), **DET))[1]["x-llmroute-cache"] == "miss"
    _, headers, _ = await harness.chat(headers=bearer(caller), **DET)
    assert headers["x-llmroute-cache"] == ("hit" if shared else "miss")
    assert fake.stats.received == (1 if shared else 2)


# --- only complete, well-formed success objects are stored -----------------------------------------------

NOT_STORED = [
    pytest.param(FakeBehavior(shape="error_body"), 200, id="error-object-under-200"),
    pytest.param(FakeBehavior(shape="partial"), 200, id="unfinished-choice"),
    pytest.param(FakeBehavior(shape="sse"), 200, id="event-stream-to-a-plain-request"),
    pytest.param(FakeBehavior(status=500), 500, id="server-error"),
    pytest.param(FakeBehavior(status=400), 400, id="client-error"),
]


@pytest.mark.parametrize(("behavior", "status"), NOT_STORED)
async def test_only_complete_success_objects_are_stored(
    harness: Harness, fake: FakeUpstream, behavior: FakeBehavior, status: int
) -> None:
    await harness.start(keyed(harness.dir, fake.url, passiveHealth={"retries": 0}))
    fake.push(behavior)
    got, headers, body = await harness.chat(headers=AUTH, **DET)
    assert got == status
    if behavior.shape == "sse":  # relayed as the stream it is, whatever the request said
        assert headers["Content-Type"].startswith("text/event-stream") and body.rstrip().endswith("[DONE]")
    status2, headers2, _ = await harness.chat(headers=AUTH, **DET)
    assert status2 == 200 and headers2["x-llmroute-cache"] == "miss" and fake.stats.received == 2
    assert (await harness.chat(headers=AUTH, **DET))[1]["x-llmroute-cache"] == "hit"  # a good one is


CHAT = b'{"object":"chat.completion","choices":[{"index":0,"finish_reason":"stop","message":{}}]}'
BODIES = [
    ("/v1/chat/completions", CHAT, "application/json", True),
    ("/v1/chat/completions", CHAT, "text/event-stream", False),
    ("/v1/chat/completions", CHAT.replace(b'"stop"', b"null"), "application/json", False),
    ("/v1/chat/completions", CHAT[:-5], "application/json", False),
    ("/v1/chat/completions", b'{"object":"chat.completion","choices":[]}', "application/json", False),
    (
        "/v1/chat/completions",
        b'{"error":{"message":"x"},"object":"chat.completion"}',
        "application/json",
        False,
    ),
    ("/v1/completions", CHAT, "application/json", False),  # the wrong object for the path
    ("/v1/embeddings", b'{"object":"list","data":[{"embedding":[0.1]}]}', "application/json", True),
    ("/v1/embeddings", b'{"object":"list","data":[]}', "application/json", False),
    ("/v1/embeddings", b"[1, 2]", "application/json", False),
]


@pytest.mark.parametrize(("path", "body", "content_type", "expected"), BODIES)
def test_storable(path: str, body: bytes, content_type: str, expected: bool) -> None:
    assert storable(path, body, content_type) is expected


async def test_a_lowered_ttl_applies_to_entries_already_cached(harness: Harness, fake: FakeUpstream) -> None:
    """Reloaded with a TTL of 50 ms, an entry stored under an hour's TTL expires 50 ms after it was stored,
    not an hour later."""
    await harness.start(keyed(harness.dir, fake.url, cache={"ttlSeconds": 3600}))
    assert (await harness.chat(headers=AUTH, **DET))[1]["x-llmroute-cache"] == "miss"
    assert (await harness.chat(headers=AUTH, **DET))[1]["x-llmroute-cache"] == "hit"
    harness.write(keyed(harness.dir, fake.url, cache={"ttlSeconds": 0.05}))

    async def missed() -> bool:
        return (await harness.chat(headers=AUTH, **DET))[1]["x-llmroute-cache"] == "miss"

    await eventually(missed, within=5.0)
    assert fake.stats.received == 2
