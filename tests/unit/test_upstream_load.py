"""Per-upstream load in the route's status: from the hub's batched query to ``status.upstreams``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from llmroute.core.observed import RouteMetrics, Scale, UpstreamLoad, UpstreamMetrics, upstream_loads
from llmroute.decide import Observed, decide
from llmroute.prom.queries import batched
from llmroute.spec import LLMRoute
from llmroute.spec.status import LLMRouteStatus

NOW = datetime(2026, 3, 4, 12, 0, 30, tzinfo=UTC)


def _route() -> LLMRoute:
    upstreams = [
        {"name": "vllm", "url": "http://vllm:8000/v1", "model": "m", "engine": {"type": "vLLM"}},
        {"name": "azure", "url": "https://x.openai.azure.com/openai/v1", "model": "m"},
    ]
    spec: dict[str, Any] = {"upstreams": upstreams, "loadBalancing": "ResourceAware"}
    spec["rateLimits"] = {"identity": {"type": "Unauthenticated"}}
    return LLMRoute.from_object({"metadata": {"name": "r", "namespace": "ns"}, "spec": spec})


def _observed(load: dict[str, UpstreamLoad], error: str | None = None) -> Observed:
    health = {name: UpstreamMetrics(100.0, 0.0, 0.3, 1.0) for name in ("vllm", "azure")}
    metrics = RouteMetrics(NOW.timestamp() - 1, {"rps": 10.0}, health, upstream_load=load)
    start = (NOW - timedelta(minutes=30)).timestamp() // 60 * 60
    return Observed(
        now=NOW,
        metrics=metrics,
        metrics_error=error,
        history_start=start,
        history=np.full(30, 10.0),
        history_step=60,
        scale=Scale(1, 1),
        conflicts=[],
        previous=LLMRouteStatus(),
    )


def test_the_batched_query_reads_every_signal_once() -> None:
    query = batched()["upstream_load"]
    for signal, metric in [
        ("inflight", "sum by (route, upstream) (llmroute_upstream_inflight_requests)"),
        ("queue_depth", "max by (route, upstream) (llmroute_upstream_queue_depth)"),
        ("kv_cache_usage", "max by (route, upstream) (llmroute_upstream_kv_cache_usage)"),
        ("quota_remaining_ratio", "min by (route, upstream) (llmroute_upstream_quota_remaining_ratio)"),
    ]:
        assert f'label_replace({metric}, "signal", "{signal}", "", "")' in query


def test_samples_are_grouped_by_route_and_upstream() -> None:
    samples: dict[tuple[str, ...], float] = {
        ("ns/r", "vllm", "inflight"): 4.0,
        ("ns/r", "vllm", "queue_depth"): 2.0,
        ("ns/r", "vllm", "kv_cache_usage"): 0.8,
        ("ns/r", "azure", "quota_remaining_ratio"): 0.35,
        ("ns/other", "x", "inflight"): 1.0,
        ("ns/r", "vllm", "unknown_signal"): 9.0,
    }
    assert upstream_loads(samples) == {
        "ns/r": {
            "vllm": UpstreamLoad(inflight=4.0, queue_depth=2.0, kv_cache_usage=0.8),
            "azure": UpstreamLoad(quota_remaining_ratio=0.35),
        },
        "ns/other": {"x": UpstreamLoad(inflight=1.0)},
    }


def test_status_shows_each_upstreams_load() -> None:
    load = {
        "vllm": UpstreamLoad(inflight=4.0, queue_depth=2.0, kv_cache_usage=0.81234),
        "azure": UpstreamLoad(inflight=1.0, quota_remaining_ratio=0.35),
    }
    status = decide(_route(), _observed(load)).status
    by_name = {u.name: u for u in status.upstreams}
    assert (by_name["vllm"].inflight, by_name["vllm"].queue_depth, by_name["vllm"].kv_cache_usage) == (
        4.0,
        2.0,
        0.8123,
    )
    assert by_name["vllm"].quota_remaining_ratio is None
    assert (by_name["azure"].quota_remaining_ratio, by_name["azure"].queue_depth) == (0.35, None)
    wire = status.to_wire()["upstreams"]
    assert {"name": "vllm", "queueDepth": 2.0, "kvCacheUsage": 0.8123, "inflight": 4.0}.items() <= next(
        u for u in wire if u["name"] == "vllm"
    ).items()


def test_no_load_is_shown_from_metrics_that_cannot_be_trusted() -> None:
    load = {"vllm": UpstreamLoad(inflight=4.0, queue_depth=2.0)}
    status = decide(_route(), _observed(load, error="Prometheus unreachable")).status
    assert all(u.queue_depth is None and u.inflight is None for u in status.upstreams)
