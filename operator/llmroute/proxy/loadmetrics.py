"""The load signals the balancer uses, exported per upstream when Prometheus scrapes the proxy.

``llmroute_upstream_inflight_requests{route,upstream}``: this proxy's requests in flight to it;
``llmroute_upstream_queue_depth{route,upstream}``: requests waiting in its engine's queue and
``llmroute_upstream_kv_cache_usage{route,upstream}``: share of its engine's KV cache in use (0..1), both from
the latest fresh reading of the engine's own metrics (absent without one);
``llmroute_upstream_quota_remaining_ratio{route,upstream}``: remaining over limit of its rate-limit quota
(the lower of requests and tokens, 0..1), estimated now from its latest ``x-ratelimit-*`` headers (absent if
it never sent any). Labels are the route and the config's upstream names, so cardinality is bounded by
the config. Values are computed at collection time (a custom collector), so they are as fresh as the scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from llmroute.proxy.balancer import Balancer
from llmroute.proxy.snapshot import ConfigSnapshot

LABELS = ["route", "upstream"]
FAMILIES = (
    ("llmroute_upstream_inflight_requests", "Requests this proxy has in flight to the upstream"),
    ("llmroute_upstream_queue_depth", "Requests waiting in the upstream engine's queue"),
    ("llmroute_upstream_kv_cache_usage", "Share of the upstream engine's KV cache in use, 0 to 1"),
    ("llmroute_upstream_quota_remaining_ratio", "Remaining over limit of the upstream's rate-limit quota"),
)


class LoadCollector(Collector):
    """Collects the per-upstream load gauges from the balancer and the current config; ``clock`` is the
    balancer's time base (the event loop's ``time``)."""

    def __init__(
        self, current: Callable[[], ConfigSnapshot | None], balancer: Balancer, clock: Callable[[], float]
    ) -> None:
        self.current = current
        self.balancer = balancer
        self.clock = clock

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, doc in FAMILIES:
            yield GaugeMetricFamily(name, doc, labels=LABELS)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = [GaugeMetricFamily(name, doc, labels=LABELS) for name, doc in FAMILIES]
        inflight, queue, kv, quota = families
        snap = self.current()
        if snap is not None:
            now = self.clock()
            signals = self.balancer.signals
            for up in snap.config.upstreams:
                labels = [snap.route, up.name]
                inflight.add_metric(labels, self.balancer.state(up.name).inflight)
                load = signals.fresh(up.name, now)
                if load is not None and load.waiting is not None:
                    queue.add_metric(labels, load.waiting)
                if load is not None and load.kv_cache_usage is not None:
                    kv.add_metric(labels, load.kv_cache_usage)
                state = signals.quotas.get(up.name)
                headroom = state.headroom(now) if state is not None else None
                if headroom is not None:
                    quota.add_metric(labels, headroom)
        yield from families
