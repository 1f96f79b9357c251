"""Load balancing within the active group, failover across groups, passive health, model rename."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, eventually, metric, upstream


@pytest.fixture
async def fakes() -> AsyncIterator[list[FakeUpstream]]:
    ups = [FakeUpstream(name) for name in ("a", "b", "c")]
    for up in ups:
        await up.start()
    try:
        yield ups
    finally:
        for up in ups:
            await up.stop()


async def served_by(h: Harness, n: int, concurrent: bool = False) -> Counter[str]:
    if concurrent:
        results = await asyncio.gather(*(h.chat() for _ in range(n)))
    else:
        results = [await h.chat() for _ in range(n)]
    assert all(r[0] == 200 for r in results)
    return Counter(r[2]["upstream"] for r in results)


async def test_round_robin(harness: Harness, fakes: list[FakeUpstream]) -> None:
    a, b, _ = fakes
    await harness.start(config(upstream(a.url), upstream(b.url, name="b"), loadBalancing="RoundRobin"))
    assert await served_by(harness, 20) == {"a": 10, "b": 10}


async def test_weighted(harness: Harness, fakes: list[FakeUpstream]) -> None:
    a, b, c = fakes
    ups = [
        upstream(a.url, weight=300),
        upstream(b.url, name="b", weight=100),
        upstream(c.url, name="c", weight=0),
    ]
    await harness.start(config(*ups, loadBalancing="Weighted"))
    assert await served_by(harness, 40) == {"a": 30, "b": 10}


async def test_least_connections_avoids_the_busy_upstream(
    harness: Harness, fakes: list[FakeUpstream]
) -> None:
    a, b, _ = fakes
    await harness.start(config(upstream(a.url), upstream(b.url, name="b"), loadBalancing="LeastConnections"))
    a.default = FakeBehavior(latency=1.0)
    slow = [asyncio.ensure_future(harness.chat()) for _ in range(2)]
    await eventually(lambda: a.stats.active == 1 and b.stats.served == 1)  # one each: the tie is rotated
    counts = await served_by(harness, 10)
    assert counts["b"] >= 9
    await asyncio.gather(*slow)


async def test_latency_aware_prefers_the_fast_upstream(harness: Harness, fakes: list[FakeUpstream]) -> None:
    a, b, _ = fakes
    await harness.start(config(upstream(a.url), upstream(b.url, name="b"), loadBalancing="LatencyAware"))
    a.default = FakeBehavior(latency=0.1)
    await served_by(harness, 4)  # warm up both estimates
    assert (await served_by(harness, 20))["b"] >= 18


async def test_failover_to_next_group_and_passive_ejection(
    harness: Harness, fakes: list[FakeUpstream]
) -> None:
    a, b, _ = fakes
    ups = [upstream(a.url), upstream(b.url, name="b", group=1)]
    health = {"consecutiveFailures": 2, "ejectSeconds": 30, "retries": 1}
    await harness.start(config(*ups, passiveHealth=health))
    a.default = FakeBehavior(status=503)
    assert await served_by(harness, 2) == {"b": 2}  # retried on the fallback group, before any byte was sent
    assert a.stats.received == 2
    assert await served_by(harness, 3) == {"b": 3}  # a is ejected: not even tried
    assert a.stats.received == 2
    text = await harness.metrics()
    assert metric(text, "llmroute_upstream_healthy", upstream="a") == 0
    assert metric(text, "llmroute_upstream_healthy", upstream="b") == 1
    assert metric(text, "llmroute_proxy_upstream_attempts_total", upstream="a", outcome="status_503") == 2


async def test_ejection_expires_and_backs_off(harness: Harness, fakes: list[FakeUpstream]) -> None:
    a, b, _ = fakes
    health = {"consecutiveFailures": 1, "ejectSeconds": 0.2, "maxEjectSeconds": 10, "retries": 1}
    await harness.start(config(upstream(a.url), upstream(b.url, name="b", group=1), passiveHealth=health))
    a.default = FakeBehavior(status=500)
    await served_by(harness, 1)

    async def back() -> bool:
        return metric(await harness.metrics(), "llmroute_upstream_healthy", upstream="a") == 1

    await eventually(back)
    a.default = FakeBehavior()
    assert await served_by(harness, 1) == {"a": 1}


async def test_active_group_and_inactive_upstreams_are_respected(
    harness: Harness, fakes: list[FakeUpstream]
) -> None:
    a, b, c = fakes
    ups = [
        upstream(a.url),
        upstream(b.url, name="b", group=1, active=False),
        upstream(c.url, name="c", group=1),
    ]
    await harness.start(config(*ups, activeGroup=1))
    assert await served_by(harness, 6, concurrent=True) == {"c": 6}
    assert a.stats.received == 0 and b.stats.received == 0


async def test_upstream_model_rename(harness: Harness, fakes: list[FakeUpstream]) -> None:
    a, _, _ = fakes
    await harness.start(config(upstream(a.url, model="gpt-public", upstreamModel="vendor/model-7b")))
    status, _, _body = await harness.chat(model="gpt-public")
    assert status == 200 and a.stats.recent[-1].body["model"] == "vendor/model-7b"
    assert a.stats.recent[-1].body["messages"] == [{"role": "user", "content": "hi"}]


def _series(text: str, name: str, upstream: str) -> bool:
    return any(line.startswith(name + "{") and f'upstream="{upstream}"' in line for line in text.splitlines())


async def test_an_upstream_a_reload_removes_is_no_longer_reported(
    harness: Harness, fakes: list[FakeUpstream]
) -> None:
    """A reload that removes an upstream stops its health series, and an attempt to it that was still out
    (failing after the reload) does not bring the series, nor the upstream's state, back: an upstream
    removed while ejected was otherwise reported unhealthy for the proxy's lifetime."""
    a, b, _ = fakes
    health = {"consecutiveFailures": 1, "ejectSeconds": 30, "retries": 0}
    await harness.start(config(upstream(a.url), upstream(b.url, name="b", group=1), passiveHealth=health))
    assert _series(await harness.metrics(), "llmroute_upstream_healthy", "a")
    a.default = FakeBehavior(status=503, latency=1.0)
    out = asyncio.ensure_future(harness.chat())
    await eventually(lambda: a.stats.active == 1)
    harness.write(config(upstream(b.url, name="b", group=1), passiveHealth=health))

    async def removed() -> bool:
        return not _series(await harness.metrics(), "llmroute_upstream_healthy", "a")

    await eventually(removed)
    assert (await out)[0] == 503  # the attempt to a ended after the reload, as a failure
    text = await harness.metrics()
    assert not _series(text, "llmroute_upstream_healthy", "a")
    assert metric(text, "llmroute_upstream_healthy", upstream="b") == 1
    assert harness.server is not None and set(harness.server.proxy.balancer.states) == {"b"}
