"""Prometheus metrics of the proxy: the contract the operator's default queries read, plus extras.

Contract (names and labels are fixed): ``llmroute_requests_total{route,tier,upstream,code,cache}``,
``llmroute_request_duration_seconds{route,tier,upstream}``, ``llmroute_time_to_first_byte_seconds``
(same labels), ``llmroute_inflight_requests{route}``, ``llmroute_tokens_total{route,tier,direction}``,
``llmroute_ratelimited_total{route,tier}``, ``llmroute_upstream_healthy{route,upstream}``; the load
signals of :mod:`llmroute.proxy.loadmetrics` (``llmroute_upstream_*{route,upstream}``).
Extras are prefixed ``llmroute_proxy_``. Label values come from the config (route, tier and upstream names,
status codes), never from clients, so cardinality stays bounded. Children are cached per label tuple:
``labels()`` is the expensive part of an increment.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.process_collector import ProcessCollector

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
NONE = "none"

# the ``*_created`` series double the scrape size and nobody queries them
disable_created_metrics()  # type: ignore[no-untyped-call]


class ProxyMetrics:
    """The proxy's registry and its metrics; :meth:`child` caches labelled children."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)
        rtu = ["route", "tier", "upstream"]

        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, registry=r)

        def gauge(name: str, doc: str, labels: list[str]) -> Gauge:
            return Gauge(name, doc, labels, registry=r)

        def histogram(name: str, doc: str) -> Histogram:
            return Histogram(name, doc, rtu, buckets=BUCKETS, registry=r)

        self.requests = counter("llmroute_requests_total", "Requests answered", [*rtu, "code", "cache"])
        self.duration = histogram("llmroute_request_duration_seconds", "Request duration")
        self.ttfb = histogram("llmroute_time_to_first_byte_seconds", "Time to the first response byte")
        self.inflight = gauge("llmroute_inflight_requests", "Requests in flight", ["route"])
        self.tokens = counter("llmroute_tokens_total", "Upstream tokens", ["route", "tier", "direction"])
        self.ratelimited = counter("llmroute_ratelimited_total", "Requests refused 429", ["route", "tier"])
        self.healthy = gauge("llmroute_upstream_healthy", "1 unless ejected", ["route", "upstream"])
        self.reloads = counter("llmroute_proxy_config_reloads_total", "Config loads by result", ["result"])
        self.config_info = gauge("llmroute_proxy_config_info", "Config being served", ["route", "hash"])
        self.config_error = gauge(
            "llmroute_proxy_config_last_error", "1 if the latest config was refused", []
        )
        self.store_fallback = gauge(
            "llmroute_proxy_store_fallback",
            "1 while the shared store is unreachable (local shares)",
            ["route"],
        )
        self.store_errors = counter("llmroute_proxy_store_errors_total", "Shared store outages", ["route"])
        self.shed = counter("llmroute_proxy_shed_total", "Requests shed by admission", ["route", "tier"])
        self.waiting = gauge("llmroute_proxy_admission_waiting", "Requests queued for a slot", ["route"])
        self.probes = counter(
            "llmroute_proxy_upstream_probes_total", "Active health probes", ["route", "upstream", "outcome"]
        )
        self.attempts = counter(
            "llmroute_proxy_upstream_attempts_total", "Upstream attempts", ["route", "upstream", "outcome"]
        )
        self.engine_scrapes = counter(
            "llmroute_proxy_engine_scrapes_total", "Engine metrics reads", ["route", "upstream", "outcome"]
        )
        self.cache_bytes = gauge("llmroute_proxy_cache_bytes", "Bytes held by the cache", ["route"])
        self.cache_entries = gauge("llmroute_proxy_cache_entries", "Entries in the cache", ["route"])
        self.access_log_dropped = counter(
            "llmroute_proxy_access_log_dropped", "Access-log lines lost (stdout stalled or closed)", []
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def forget(self, metric: Any, *labels: str) -> None:
        """Stop exporting ``metric``'s series with ``labels`` (an upstream a reload removed)."""
        if self._children.pop((id(metric), *labels), None) is not None:
            metric.remove(*labels)

    def answered(
        self, route: str, tier: str, upstream: str, code: int, cache: str, duration: float, ttfb: float | None
    ) -> None:
        self.child(self.requests, route, tier, upstream, str(code), cache).inc()
        self.child(self.duration, route, tier, upstream).observe(duration)
        if ttfb is not None:
            self.child(self.ttfb, route, tier, upstream).observe(ttfb)

    def cache_size(self, route: str, entries: int, size: int) -> None:
        """Set the cache gauges of ``route``: ``entries`` held, ``size`` in bytes."""
        self.child(self.cache_bytes, route).set(size)
        self.child(self.cache_entries, route).set(entries)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
