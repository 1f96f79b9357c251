"""Identity: pass-through without tiers, API keys (hashed) and trusted headers, exactly as documented."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from llmroute.testing.fake_upstream import FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.rawhttp import exchange
from tests.proxy.support import config, metric, tier, upstream


def keyed(tmp: Path, fake: FakeUpstream, default: str | None = None, **limits: Any) -> dict[str, Any]:
    gold = tmp / "gold-keys"
    gold.write_text(
        "# gold clients\ngold-key-1\n\nsha256:" + hashlib.sha256(b"gold-key-2").hexdigest() + "\n"
    )
    free = tmp / "free-keys"
    free.write_text("free-key\n")
    tiers = [tier("gold", priority=10, apiKeysFile=str(gold)), tier("free", apiKeysFile=str(free))]
    return config(upstream(fake.url), limits={"tiers": tiers, "defaultTier": default, **limits})


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def tier_count(h: Harness, name: str) -> float:
    return metric(await h.metrics(), "llmroute_requests_total", tier=name, code="200")


async def test_no_tiers_means_no_authentication(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url)))
    assert (await harness.chat())[0] == 200
    # the client's own credentials pass through when the proxy has no key of its own
    assert (await harness.chat(headers=bearer("client-upstream-key")))[0] == 200
    assert fake.stats.recent[-1].headers["Authorization"] == "Bearer client-upstream-key"
    assert await tier_count(harness, "none") == 2


async def test_api_keys_map_to_tiers(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(keyed(harness.dir, fake))
    assert (await harness.chat(headers=bearer("gold-key-1")))[0] == 200
    assert (await harness.chat(headers=bearer("gold-key-2")))[0] == 200  # listed as sha256:<hex>
    assert (await harness.chat(headers={"api-key": "free-key"}))[0] == 200
    assert await tier_count(harness, "gold") == 2
    assert await tier_count(harness, "free") == 1
    # the client's proxy key is never sent upstream
    assert "Authorization" not in fake.stats.recent[-1].headers


async def test_unknown_or_missing_key_is_401(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(keyed(harness.dir, fake))
    for headers in (bearer("wrong"), {}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        status, _, body = await harness.chat(headers=headers)
        assert status == 401
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["code"] == "invalid_api_key"
    async with harness.session.get(harness.url + "/v1/models") as resp:
        assert resp.status == 401
    assert fake.stats.received == 0


async def test_missing_key_uses_default_tier_but_unknown_key_does_not(
    harness: Harness, fake: FakeUpstream
) -> None:
    await harness.start(keyed(harness.dir, fake, default="free"))
    assert (await harness.chat())[0] == 200
    assert await tier_count(harness, "free") == 1
    assert (await harness.chat(headers=bearer("wrong")))[0] == 401


async def test_header_identity(harness: Harness, fake: FakeUpstream) -> None:
    limits = {"identity": "Header", "header": "x-team", "tiers": [tier("gold"), tier("free")]}
    await harness.start(config(upstream(fake.url), limits=limits))
    assert (await harness.chat(headers={"x-team": "gold"}))[0] == 200
    assert (await harness.chat(headers={"x-team": "platinum"}))[0] == 401
    assert (await harness.chat())[0] == 401
    assert await tier_count(harness, "gold") == 1
    harness.write(config(upstream(fake.url), limits={**limits, "defaultTier": "free"}))
    await _reloaded(harness)
    assert (await harness.chat(headers={"x-team": "platinum"}))[0] == 200
    assert (await harness.chat())[0] == 200
    assert await tier_count(harness, "free") == 2


async def _reloaded(h: Harness) -> None:
    from tests.proxy.support import eventually

    async def done() -> bool:
        return metric(await h.metrics(), "llmroute_proxy_config_reloads_total", result="ok") >= 2

    await eventually(done)


CHAT = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'


def raw(method: str, path: str, headers: bytes) -> bytes:
    """A request with ``headers`` as bytes (an HTTP client library will not send bytes that are not UTF-8)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(CHAT)}\r\n".encode()
    return head + headers + b"\r\n\r\n" + CHAT


async def test_a_key_that_is_not_utf8_is_hashed_as_sent(harness: Harness, fake: FakeUpstream) -> None:
    """aiohttp reads a header's bytes that are not UTF-8 as lone surrogates: such a key is hashed as the
    bytes sent, so it is refused 401 where keys are verified and served where a header names the tier."""
    server = await harness.start(keyed(harness.dir, fake))
    for method, path in (("POST", "/v1/chat/completions"), ("GET", "/v1/models")):
        for header in (b"Authorization: Bearer \xff\xfe", b"api-key: gold-key-1\xc3"):
            (answer,) = await exchange(server.port, raw(method, path, header))
            assert answer.status == 401, (path, header, answer.body)
            assert answer.json()["error"]["code"] == "invalid_api_key"
    assert fake.stats.received == 0
    await harness.stop()
    limits = {"identity": "Header", "header": "x-tier", "tiers": [tier("free")]}
    server = await harness.start(config(upstream(fake.url), limits=limits))
    data = raw("POST", "/v1/chat/completions", b"x-tier: free\r\nAuthorization: Bearer \xff\xfe")
    (answer,) = await exchange(server.port, data)
    assert answer.status == 200, answer.body
    assert await tier_count(harness, "free") == 1
