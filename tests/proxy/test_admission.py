"""Priority admission: bounded concurrency, higher tiers first, shedding after the queue timeout."""

from __future__ import annotations

import asyncio

from llmroute.proxy.admission import PriorityGate
from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, eventually, metric, tier, upstream


async def test_gate_serves_higher_priority_first() -> None:
    gate = PriorityGate(1)
    assert await gate.acquire(0, None)
    order: list[str] = []

    async def waiter(name: str, priority: int) -> None:
        assert await gate.acquire(priority, 5.0)
        order.append(name)
        gate.release()

    tasks = [
        asyncio.ensure_future(waiter(n, p)) for n, p in (("low", 0), ("high", 10), ("mid", 5), ("low2", 0))
    ]
    await eventually(lambda: gate.waiting == 4)
    gate.release()
    await asyncio.gather(*tasks)
    assert order == ["high", "mid", "low", "low2"]
    assert gate.active == 0


async def test_gate_times_out_and_cancels_cleanly() -> None:
    gate = PriorityGate(1)
    assert await gate.acquire(0, None)
    assert not await gate.acquire(0, 0.05)
    task = asyncio.ensure_future(gate.acquire(0, None))
    await eventually(lambda: gate.waiting == 1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert gate.waiting == 0
    gate.release()
    assert gate.active == 0 and await gate.acquire(0, 0)


async def test_saturated_proxy_admits_high_tier_first_and_sheds_low(
    harness: Harness, fake: FakeUpstream
) -> None:
    limits = {"identity": "Header", "tiers": [tier("gold", priority=10), tier("free")]}
    cfg = config(upstream(fake.url), limits=limits, admission={"maxConcurrency": 1, "queueTimeoutSeconds": 3})
    await harness.start(cfg)
    fake.default = FakeBehavior(latency=0.3)
    gold, free = {"x-llmroute-tier": "gold"}, {"x-llmroute-tier": "free"}
    first = asyncio.ensure_future(harness.chat(headers=free, user="occupant"))
    await eventually(lambda: fake.stats.active == 1)
    low = asyncio.ensure_future(harness.chat(headers=free, user="low"))
    await eventually(lambda: harness.server is not None and harness.server.proxy.gate.waiting == 1)
    high = asyncio.ensure_future(harness.chat(headers=gold, user="high"))
    await eventually(lambda: harness.server is not None and harness.server.proxy.gate.waiting == 2)
    results = await asyncio.gather(first, low, high)
    assert [r[0] for r in results] == [200, 200, 200]
    assert [r.body.get("user") for r in fake.stats.recent] == ["occupant", "high", "low"]


async def test_queue_timeout_sheds_with_503(harness: Harness, fake: FakeUpstream) -> None:
    limits = {"identity": "Header", "defaultTier": "free", "tiers": [tier("free")]}
    cfg = config(
        upstream(fake.url), limits=limits, admission={"maxConcurrency": 1, "queueTimeoutSeconds": 0.1}
    )
    await harness.start(cfg)
    fake.default = FakeBehavior(latency=1.0)
    occupant = asyncio.ensure_future(harness.chat())
    await eventually(lambda: fake.stats.active == 1)
    status, headers, body = await harness.chat()
    assert status == 503 and body["error"]["code"] == "overloaded" and "Retry-After" in headers
    assert (await occupant)[0] == 200
    assert metric(await harness.metrics(), "llmroute_proxy_shed_total", tier="free") == 1


async def test_unsheddable_tier_waits_past_the_queue_timeout(harness: Harness, fake: FakeUpstream) -> None:
    limits = {"identity": "Header", "tiers": [tier("system", sheddable=False), tier("free")]}
    cfg = config(
        upstream(fake.url), limits=limits, admission={"maxConcurrency": 1, "queueTimeoutSeconds": 0.05}
    )
    await harness.start(cfg)
    fake.default = FakeBehavior(latency=0.4)
    occupant = asyncio.ensure_future(harness.chat(headers={"x-llmroute-tier": "free"}))
    await eventually(lambda: fake.stats.active == 1)
    status, _, _ = await harness.chat(headers={"x-llmroute-tier": "system"})
    assert status == 200 and (await occupant)[0] == 200
