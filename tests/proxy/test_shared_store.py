"""Shared-store limits: several proxy processes hold one global limit in a real redis-server, and fall back
to their local share (never unlimited, never failing) while Redis is down."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from llmroute.core.gcra import LimitCheck
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.ratelimit import RateLimiter
from llmroute.proxy.store import SharedLimiter
from llmroute.testing.fake_upstream import FakeUpstream
from tests.proxy.conftest import Harness, RedisServer
from tests.proxy.support import ProxyProcess, config, eventually, metric, tier, upstream

GLOBAL_RPM = 600  # 10/s with a one-second burst of 10
REPLICAS = 2


def write_config(tmp: Path, fake: FakeUpstream, redis_url: str) -> Path:
    keys = tmp / "keys"
    keys.write_text("sk-a\nsk-b\n")
    team = tier("team", apiKeysFile=str(keys), requestsPerMinute=GLOBAL_RPM // REPLICAS,
                globalRequestsPerMinute=GLOBAL_RPM)  # fmt: skip
    limits = {
        "tiers": [team],
        "divisor": REPLICAS,
        "replicas": REPLICAS,
        "store": {"type": "Redis", "url": redis_url},
    }
    path = tmp / "config.json"
    path.write_text(json.dumps(config(upstream(fake.url), limits=limits)))
    return path


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[ProxyProcess]]:
    started: list[ProxyProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.stop()


async def burst(session: aiohttp.ClientSession, url: str, n: int) -> list[int]:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": "Bearer sk-a"}

    async def one() -> int:
        async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as resp:
            await resp.read()
            return resp.status

    return await asyncio.gather(*(one() for _ in range(n)))


async def test_replicas_share_one_global_limit_under_skew(
    tmp_path: Path, fake: FakeUpstream, redis_server: RedisServer, processes: list[ProxyProcess]
) -> None:
    path = write_config(tmp_path, fake, redis_server.url)
    processes += [ProxyProcess(path, tmp_path / f"proxy-{i}.log") for i in range(REPLICAS)]
    urls = [await p.ready() for p in processes]
    metrics_url = processes[0].metrics_url
    async with aiohttp.ClientSession() as session:
        loop = asyncio.get_running_loop()
        started = loop.time()
        # skewed: all traffic on the first replica still gets the whole global burst, not its half share
        skewed = await burst(session, urls[0], 30)
        elapsed = loop.time() - started
        admitted = skewed.count(200)
        assert set(skewed) <= {200, 429}
        assert 10 <= admitted <= 10 + math.ceil(10 * elapsed) + 1, (admitted, elapsed)
        # and the other replica sees the same exhausted budget
        started = loop.time()
        other = await burst(session, urls[1], 10)
        assert other.count(200) <= math.ceil(10 * (loop.time() - started)) + 2
        text = ""
        async with session.get(metrics_url + "/metrics") as resp:
            text = await resp.text()
        assert metric(text, "llmroute_proxy_store_fallback") == 0
        assert metric(text, "llmroute_ratelimited_total", tier="team") == 30 - admitted


async def test_store_outage_falls_back_to_local_share_and_recovers(
    tmp_path: Path, fake: FakeUpstream, redis_server: RedisServer, processes: list[ProxyProcess]
) -> None:
    path = write_config(tmp_path, fake, redis_server.url)
    processes.append(ProxyProcess(path, tmp_path / "proxy.log"))
    url = await processes[0].ready()
    async with aiohttp.ClientSession() as session:

        async def fallback() -> float:
            async with session.get(processes[0].metrics_url + "/metrics") as resp:
                return metric(await resp.text(), "llmroute_proxy_store_fallback")

        assert (await burst(session, url, 1)) == [200]
        redis_server.stop()
        loop = asyncio.get_running_loop()
        started = loop.time()
        statuses = await burst(session, url, 30)
        elapsed = loop.time() - started
        assert set(statuses) <= {200, 429}
        # the local share (300/min: 5/s, burst 5) applies: not unlimited, not failing everything
        assert 5 <= statuses.count(200) <= 5 + math.ceil(5 * elapsed) + 1, (statuses.count(200), elapsed)
        assert await fallback() == 1
        redis_server.start()

        async def recovered() -> bool:
            await burst(session, url, 1)  # the store is probed again on traffic, with backoff
            return await fallback() == 0

        await eventually(recovered, within=20, interval=0.2)
    assert "unreachable" in processes[0].log_path.read_text()


async def test_store_password_comes_from_a_file(tmp_path: Path, fake: FakeUpstream) -> None:
    from llmroute.proxy.server import ProxyServer

    redis = RedisServer(tmp_path, password="redis-secret")
    redis.start()
    try:
        (tmp_path / "redis-password").write_text("redis-secret\n")
        path = write_config(tmp_path, fake, redis.url)
        body = json.loads(path.read_text())
        body["limits"]["store"]["passwordFile"] = str(tmp_path / "redis-password")
        path.write_text(json.dumps(body))
        server = ProxyServer(str(path), "127.0.0.1", 0)
        await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                statuses = await burst(session, server.url, 15)
                async with session.get(server.metrics_url + "/metrics") as resp:
                    text = await resp.text()
            # the global figure (10/s, burst 10) applied, through Redis: not the local share of 5
            assert statuses.count(200) >= 10 and metric(text, "llmroute_proxy_store_fallback") == 0
        finally:
            await server.stop()
    finally:
        redis.stop()


class SlowRelay:
    """A loopback TCP relay in front of Redis that holds what the proxy sends for ``delay`` seconds."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay = 0.0
        self.held = 0  # chunks being held
        self.slow_forwarded = 0  # chunks forwarded after a delay
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{self.port}/0"

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, slow: bool) -> None:
            while data := await src.read(65536):
                if slow and self.delay:
                    self.held += 1
                    await asyncio.sleep(self.delay)  # the relay's latency, not synchronisation
                    self.held -= 1
                    self.slow_forwarded += 1
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(client_r, redis_w, True), pipe(redis_r, client_w, False))

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_a_caller_gone_during_a_shared_admission_is_not_charged(
    tmp_path: Path, fake: FakeUpstream, redis_server: RedisServer, processes: list[ProxyProcess]
) -> None:
    """One request a minute for the team: a caller that leaves while the store is deciding must not use
    it up (the store's charge, which lands after the caller left, is given back)."""
    relay = SlowRelay(redis_server.port)
    store_url = await relay.start()
    keys, warm_keys = tmp_path / "keys", tmp_path / "warm-keys"
    keys.write_text("sk-a\n")
    warm_keys.write_text("sk-w\n")
    team = tier("team", apiKeysFile=str(keys), requestsPerMinute=1, globalRequestsPerMinute=1)
    warm = tier("warm", apiKeysFile=str(warm_keys), requestsPerMinute=100_000)
    limits = {
        "tiers": [team, warm],
        "divisor": 1,
        "replicas": 1,
        "store": {"type": "Redis", "url": store_url},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config(upstream(fake.url), limits=limits)))
    processes.append(ProxyProcess(path, tmp_path / "proxy.log"))
    url = await processes[0].ready()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    async def status(session: aiohttp.ClientSession, key: str) -> int:
        headers = {"Authorization": f"Bearer {key}"}
        async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as resp:
            await resp.read()
            return resp.status

    try:
        async with aiohttp.ClientSession() as session:
            assert await status(session, "sk-w") == 200  # the store's connection and script, warm
            relay.delay = 0.2  # under the store client's 0.25 s read timeout: the store decides, slowly
            with pytest.raises(TimeoutError):
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.1)) as impatient:
                    await status(impatient, "sk-a")
            # the admission reached the store after the caller left; then the relay is quick again
            await eventually(lambda: relay.slow_forwarded >= 1 and relay.held == 0, within=5, interval=0.02)
            relay.delay = 0.0

            async def admitted() -> bool:
                return await status(session, "sk-a") == 200

            await eventually(admitted, within=10, interval=0.2)
            async with session.get(processes[0].metrics_url + "/metrics") as resp:
                assert metric(await resp.text(), "llmroute_proxy_store_fallback") == 0
    finally:
        relay.stop()


def _redis_limited(tmp: Path, fake: FakeUpstream, redis_url: str, rpm: int) -> dict[str, Any]:
    keys = tmp / "keys"
    keys.write_text("sk-a\n")
    team = tier("team", apiKeysFile=str(keys), requestsPerMinute=rpm, globalRequestsPerMinute=rpm)
    return config(upstream(fake.url), limits={"tiers": [team], "store": {"type": "Redis", "url": redis_url}})


async def test_a_raised_global_limit_frees_a_limited_client(
    harness: Harness, fake: FakeUpstream, redis_server: RedisServer
) -> None:
    """The shared counter follows a raised limit as the local ones do: the one request admitted at 1/min
    is a tenth of a second at 600/min. Before, Redis kept the TAT a minute ahead and refused the client
    for that minute under the new limit."""
    await harness.start(_redis_limited(harness.dir, fake, redis_server.url, 1))
    auth = {"Authorization": "Bearer sk-a"}
    assert (await harness.chat(headers=auth))[0] == 200
    status, headers, _ = await harness.chat(headers=auth)
    assert status == 429 and int(headers["Retry-After"]) > 50
    text = await harness.metrics()
    assert metric(text, "llmroute_proxy_store_fallback", route="ns/r") == 0  # Redis decided
    harness.write(_redis_limited(harness.dir, fake, redis_server.url, 600))

    async def limit_applied() -> bool:
        return (await harness.chat(headers=auth))[1].get("x-ratelimit-limit-requests") == "600"

    await eventually(limit_applied, within=5.0)
    status, headers, _ = await harness.chat(headers=auth)
    assert status == 200, f"refused after the limit was raised: Retry-After {headers.get('Retry-After')}"
    assert headers["x-ratelimit-limit-requests"] == "600"


async def test_a_settle_after_a_limit_change_charges_the_units_used(redis_server: RedisServer) -> None:
    """A request admitted under 6,000 tokens/min settles 5,000 tokens over its estimate after the limit was
    raised to 60,000: the counter is charged 5,000 tokens at the new rate (5 s), not 50 s of the old one."""
    store = SharedLimiter(redis_server.url, None, "ns/r", lambda down: None)
    try:
        old = LimitCheck("t|team|t", 6_000, 100.0, "tokens")
        new = LimitCheck("t|team|t", 60_000, 100.0, "tokens")
        first = await store.admit((old,), 0.0)
        assert first is not None and first.allowed
        assert first.statuses[0].reset == pytest.approx(1.0, abs=0.05)  # 100 tokens at 100/s
        second = await store.admit((new,), 0.0)  # the limit is raised: 200 tokens are 0.2 s at 1,000/s
        assert second is not None and second.allowed
        assert second.statuses[0].reset == pytest.approx(0.2, abs=0.05)
        await store.correct(first.checks, 5_000.0, 0.0)  # the first request settles, counted at 6,000/min
        refused = await store.admit((new,), 0.0)
        assert refused is not None and not refused.allowed
        assert 3.7 < refused.retry_after < 4.3, f"retry after {refused.retry_after:.1f}s, not about 4.2 s"
    finally:
        await store.close()


async def test_a_store_clock_that_went_back_does_not_put_every_counter_in_debt(
    redis_server: RedisServer,
) -> None:
    """Redis's clock steps back ten minutes (a failover to a replica whose clock is behind, an NTP step):
    the counters its old clock left behind are not ten minutes in debt, the route's clock goes on from
    the latest time it saw."""
    store = SharedLimiter(redis_server.url, None, "ns/r", lambda down: None)
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        check = LimitCheck("t|team|r", 600, 1.0, "requests")  # 10/s, a burst of 10
        seconds, micros = await client.time()
        ahead = seconds + micros / 1e6 + 600.0  # what the clock read before it stepped back
        await client.hset("llmroute:{ns/r}:clock", mapping={"last": f"{ahead:.6f}", "skew": "0"})
        key = store._keys((check,))[0]
        await client.set(key, f"{ahead + 0.5:.6f}")  # half a second of debt on the old clock
        await client.set(key + "|i", repr(60.0 / 600))
        verdict = await store.admit((check,), 0.0)
        assert verdict is not None and verdict.allowed, (
            f"refused, retry after {verdict and verdict.retry_after}"
        )
        assert verdict.statuses[0].reset == pytest.approx(0.6, abs=0.05)
        refused = [await store.admit((check,), 0.0) for _ in range(10)][-1]
        assert refused is not None and not refused.allowed and refused.retry_after < 1.0
    finally:
        await client.aclose()
        await store.close()


async def test_a_long_request_settles_its_usage_on_a_counter_expired_while_it_ran(
    redis_server: RedisServer,
) -> None:
    """A counter expires a second after its debt is paid: a request that ran longer than its estimate's
    debt settles its usage from the TAT its admission left, as the local limiter does, instead of
    losing it with the counter (a client streaming twice its token limit was never held back)."""
    store = SharedLimiter(redis_server.url, None, "ns/r", lambda down: None)
    limiter = RateLimiter(ProxyMetrics())
    limiter.shared = store
    try:
        check = LimitCheck("c|team|ab|t", 60_000, 100.0, "tokens")  # 1,000 tokens/s: 0.1 s of debt
        verdict = await store.admit((check,), 0.0)
        assert verdict is not None and verdict.allowed
        await asyncio.sleep(1.3)  # the counter is gone (kept 1 s past its debt)
        limiter.correct(verdict, 5_000.0)  # 5 s more, counted from the admission: 3.8 s still ahead
        await asyncio.gather(*limiter._tasks)
        refused = await store.admit((check,), 0.0)
        assert refused is not None and not refused.allowed
        assert 2.5 < refused.retry_after < 3.0, f"retry after {refused.retry_after:.2f}s, not about 2.8 s"
    finally:
        await store.close()
