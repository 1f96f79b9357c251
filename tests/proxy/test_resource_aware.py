"""ResourceAware balancing on real sockets: engines' own gauges, metrics endpoints down, slow or stale, and
hosted APIs' rate-limit headers in OpenAI's and Azure's shapes."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from llmroute.testing.fake_engine import EngineModel
from llmroute.testing.fake_quota import HostedQuota
from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness, free_port
from tests.proxy.support import config, eventually, metric, upstream

FAST_SCRAPES = {"scrapeIntervalSeconds": 0.2, "scrapeTimeoutSeconds": 0.1}


def metrics_url(fake: FakeUpstream) -> str:
    return fake.url.removesuffix("/v1") + "/metrics"


def engine_upstream(url: str, name: str, metrics: str, **kw: Any) -> dict[str, Any]:
    return upstream(url, name=name, engine="vLLM", metricsUrl=metrics, **kw)


class MetricsEndpoint:
    """A metrics endpoint whose page, status and delay the test sets while it runs."""

    def __init__(self) -> None:
        self.text = ""
        self.status = 200
        self.delay = 0.0
        self.url = ""
        self.gets = 0
        self._runner: web.AppRunner | None = None

    async def _get(self, request: web.Request) -> web.Response:
        self.gets += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(text=self.text, status=self.status, content_type="text/plain")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._get)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/metrics"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def endpoint() -> AsyncIterator[MetricsEndpoint]:
    e = MetricsEndpoint()
    await e.start()
    try:
        yield e
    finally:
        await e.stop()


@pytest.fixture
async def engines() -> AsyncIterator[tuple[FakeUpstream, FakeUpstream]]:
    small = FakeUpstream("small", FakeBehavior(latency=0.02), engine=EngineModel(1))
    large = FakeUpstream("large", FakeBehavior(latency=0.02), engine=EngineModel(4))
    for fake in (small, large):
        await fake.start()
    try:
        yield small, large
    finally:
        for fake in (small, large):
            await fake.stop()


async def served_by(h: Harness, n: int) -> Counter[str]:
    results = [await h.chat() for _ in range(n)]
    assert [r[0] for r in results] == [200] * n
    return Counter(r[2]["upstream"] for r in results)


async def gauge(h: Harness, name: str, upstream_name: str) -> float | None:
    """The gauge's value for the upstream, ``None`` when the proxy does not export it."""
    text = await h.metrics()
    if f'{name}{{route="ns/r",upstream="{upstream_name}"}}' not in text:
        return None
    return metric(text, name, upstream=upstream_name)


async def test_an_engine_queued_by_other_clients_is_avoided(
    harness: Harness, engines: tuple[FakeUpstream, FakeUpstream], session: Any
) -> None:
    small, large = engines
    ups = [
        engine_upstream(small.url, "small", metrics_url(small)),
        engine_upstream(large.url, "large", metrics_url(large)),
    ]
    await harness.start(config(*ups, loadBalancing="ResourceAware", engineMetrics=FAST_SCRAPES))
    small.default = FakeBehavior(latency=2.0)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    others = [
        asyncio.ensure_future(session.post(small.url + "/chat/completions", json=body)) for _ in range(5)
    ]
    await eventually(lambda: small.engine is not None and small.engine.waiting == 4)

    async def queue_seen() -> bool:
        return await gauge(harness, "llmroute_upstream_queue_depth", "small") == 4.0

    await eventually(queue_seen)  # the proxy has no request of its own there: only the engine's gauges tell
    assert await gauge(harness, "llmroute_upstream_kv_cache_usage", "small") == 1.0
    assert await gauge(harness, "llmroute_upstream_kv_cache_usage", "large") == 0.0
    assert await served_by(harness, 12) == {"large": 12}
    for response in await asyncio.gather(*others):
        response.release()


async def test_metrics_endpoint_down_degrades_to_least_connections(
    harness: Harness, engines: tuple[FakeUpstream, FakeUpstream]
) -> None:
    small, large = engines
    closed = f"http://127.0.0.1:{free_port()}/metrics"
    ups = [
        engine_upstream(small.url, "small", closed),
        engine_upstream(large.url, "large", metrics_url(large)),
    ]
    await harness.start(config(*ups, loadBalancing="ResourceAware", engineMetrics=FAST_SCRAPES))

    async def failed_scrapes() -> float:
        text = await harness.metrics()
        return metric(text, "llmroute_proxy_engine_scrapes_total", upstream="small", outcome="error")

    await eventually(lambda: failed_scrapes())
    counts = await served_by(harness, 20)
    assert counts["small"] > 0 and counts["large"] > 0  # idle and equal: both get traffic, none fails
    assert await gauge(harness, "llmroute_upstream_queue_depth", "small") is None
    assert await gauge(harness, "llmroute_upstream_queue_depth", "large") == 0.0


async def test_a_slow_metrics_endpoint_is_cut_off_at_the_scrape_timeout(
    harness: Harness, fake: FakeUpstream, endpoint: MetricsEndpoint
) -> None:
    endpoint.delay = 30.0
    scrapes = {"scrapeIntervalSeconds": 0.3, "scrapeTimeoutSeconds": 0.1}
    ups = [engine_upstream(fake.url, "a", endpoint.url)]
    await harness.start(config(*ups, loadBalancing="ResourceAware", engineMetrics=scrapes))

    async def timeouts() -> float:
        text = await harness.metrics()
        return metric(text, "llmroute_proxy_engine_scrapes_total", upstream="a", outcome="timeout")

    # a scrape that waited for the answer would take 30 s; three of them have ended well within the deadline
    await eventually(lambda: timeouts_at_least(timeouts, 3), within=5.0)
    assert endpoint.gets >= 3
    status, _, _ = await harness.chat()
    assert status == 200


async def timeouts_at_least(read: Any, n: int) -> bool:
    return bool(await read() >= n)


async def test_a_signal_that_goes_stale_stops_steering(
    harness: Harness, fake: FakeUpstream, fake_b: FakeUpstream, endpoint: MetricsEndpoint
) -> None:
    endpoint.text = (
        'vllm:num_requests_waiting{model_name="m"} 50\n'
        'vllm:num_requests_running{model_name="m"} 8\n'
        'vllm:kv_cache_usage_perc{model_name="m"} 1.0\n'
    )
    ups = [engine_upstream(fake.url, "a", endpoint.url), upstream(fake_b.url, name="b")]
    await harness.start(config(*ups, loadBalancing="ResourceAware", engineMetrics=FAST_SCRAPES))

    async def queue(value: float | None) -> bool:
        return await gauge(harness, "llmroute_upstream_queue_depth", "a") == value

    await eventually(lambda: queue(50.0))
    assert await served_by(harness, 10) == {"b": 10}
    endpoint.status = 500  # the engine's metrics break: the last reading (50 waiting) ages
    await eventually(lambda: queue(None), within=5.0)  # stale after three intervals: no longer exported
    counts = await served_by(harness, 20)
    # the stale queue no longer steers away from a: it is chosen again. Which of the two idle upstreams
    # takes the rest depends on their latency EWMAs (part of the score), which vary with the machine's
    # load: under a busy CI run b's earlier answers were slower and a took all 20, so only a is asserted
    assert counts["a"] > 0 and sum(counts.values()) == 20


@pytest.mark.parametrize("strategy", ["RoundRobin", "ResourceAware"])
async def test_hosted_quota_headers_keep_traffic_off_the_exhausted_upstream(
    harness: Harness, strategy: str
) -> None:
    small = FakeUpstream("small", quota=HostedQuota(requests=4, tokens=10**6, window_seconds=600))
    large = FakeUpstream("large", quota=HostedQuota(requests=100, tokens=10**6, window_seconds=600))
    for fake in (small, large):
        await fake.start()
    try:
        ups = [upstream(small.url, name="small"), upstream(large.url, name="large")]
        await harness.start(config(*ups, loadBalancing=strategy))
        counts = await served_by(harness, 20)  # a 429 is retried on the other upstream: clients see 200
        if strategy == "RoundRobin":
            assert small.stats.ratelimited > 0
        else:
            assert small.stats.ratelimited == 0
            assert 1 <= counts["small"] <= 4
    finally:
        for fake in (small, large):
            await fake.stop()


async def test_openai_and_azure_header_shapes_are_exported_as_remaining_ratios(harness: Harness) -> None:
    openai = FakeUpstream("openai", quota=HostedQuota(requests=10, tokens=10**6, window_seconds=3600))
    azure = FakeUpstream(
        "azure", quota=HostedQuota(requests=20, tokens=1000, window_seconds=3600, style="azure")
    )
    for fake in (openai, azure):
        await fake.start()
    try:
        ups = [upstream(openai.url, name="openai"), upstream(azure.url, name="azure")]
        await harness.start(config(*ups, loadBalancing="RoundRobin"))
        await served_by(harness, 4)  # two each
        ratio = await gauge(harness, "llmroute_upstream_quota_remaining_ratio", "openai")
        assert ratio == pytest.approx(8 / 10, abs=0.01)
        # Azure: requests have no limit header, so the largest remaining seen (19, after the first request)
        # stands in for it; tokens have one (1000) and reset in plain seconds
        assert azure.quota is not None
        tokens_left = azure.quota.tokens.level
        ratio = await gauge(harness, "llmroute_upstream_quota_remaining_ratio", "azure")
        assert ratio == pytest.approx(min(18 / 19, tokens_left / 1000), abs=0.01)
    finally:
        for fake in (openai, azure):
            await fake.stop()


async def test_a_429_with_retry_after_cools_the_upstream_down(
    harness: Harness, fake: FakeUpstream, fake_b: FakeUpstream
) -> None:
    ups = [upstream(fake.url), upstream(fake_b.url, name="b")]
    health = {"consecutiveFailures": 100}  # not ejected: only the cooldown keeps it away
    await harness.start(config(*ups, loadBalancing="ResourceAware", passiveHealth=health))
    fake.default = FakeBehavior(status=429, retry_after=60)
    for _ in range(20):  # until the pick has landed on it once (and the 429 was retried on b)
        await served_by(harness, 1)
        if fake.stats.received:
            break
    received = fake.stats.received
    assert received == 1
    assert await served_by(harness, 20) == {"b": 20}
    assert fake.stats.received == received
