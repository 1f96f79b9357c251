"""What the operator observed, as plain numbers: the metrics hub fills these in, the Kubernetes adapter
reads the Deployment's scale into :class:`Scale`, and the decision step reads both. Pure data, so the
decision step needs neither a Prometheus nor a Kubernetes client to run (or to be tested).

Metric keys are one :data:`MetricKey` literal: the names under which the hub files a route's numbers and
under which the decision step looks them up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from llmroute.spec.scaling import MetricType

LoadKey = Literal["rps", "inflight", "tokens", "custom"]
"""The route's scaling metric as the hub files it (``custom``: the route's own PromQL)."""

MetricKey = Literal["rps", "inflight", "tokens", "custom", "error_rate", "latency_p95", "ratelimited"]
"""Every per-route number the hub reports: the load metrics plus error rate (0..1), p95 latency (seconds)
and rate-limited requests per second."""

LOAD_KEYS: dict[MetricType, LoadKey] = {
    "RequestsPerSecond": "rps",
    "InFlight": "inflight",
    "TokensPerSecond": "tokens",
    "Custom": "custom",
}


def load_key(metric_type: MetricType) -> LoadKey:
    """The key under which a route whose ``scaling.metric.type`` is ``metric_type`` finds its load."""
    return LOAD_KEYS[metric_type]


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}


def duration_seconds(duration: str) -> float:
    """Seconds in a PromQL duration (``90s``, ``4m``, ``1h30m``); raises ``ValueError`` otherwise."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"{duration!r} is not a PromQL duration")
    return sum(int(n) * _UNITS[u] for n, u in parts)


@dataclass(frozen=True)
class UpstreamMetrics:
    """One upstream of one route over the failover window.

    ``requests``: attempts plus probes in the window (count); ``error_rate``: failed share (0..1);
    ``latency_p95``: seconds; ``healthy_fraction``: share of proxy replicas not ejecting it (0..1).
    Any figure may be ``None`` (not reported)."""

    requests: float | None
    error_rate: float | None
    latency_p95: float | None
    healthy_fraction: float | None = None


@dataclass(frozen=True)
class UpstreamLoad:
    """One upstream's load as the proxies' balancers see it (each ``None`` when not exported):
    ``inflight`` requests summed over proxy replicas, ``queue_depth`` requests waiting at its engine,
    ``kv_cache_usage`` share of its engine's KV cache in use (0..1), ``quota_remaining_ratio`` share of
    its rate-limit quota left (0..1)."""

    inflight: float | None = None
    queue_depth: float | None = None
    kv_cache_usage: float | None = None
    quota_remaining_ratio: float | None = None


def upstream_loads(samples: dict[tuple[str, ...], float]) -> dict[str, dict[str, UpstreamLoad]]:
    """Loads by route and upstream from ``(route, upstream, signal) -> value`` samples (signals are the
    field names of :class:`UpstreamLoad`; others are ignored)."""
    signals: dict[tuple[str, str], dict[str, float]] = {}
    for (route, upstream, signal), value in samples.items():
        if signal in UpstreamLoad.__dataclass_fields__:
            signals.setdefault((route, upstream), {})[signal] = value
    out: dict[str, dict[str, UpstreamLoad]] = {}
    for (route, upstream), values in signals.items():
        out.setdefault(route, {})[upstream] = UpstreamLoad(**values)
    return out


@dataclass(frozen=True)
class RouteMetrics:
    """A route's newest numbers: ``time`` (unix seconds, when they were read), ``values`` by metric key
    (only the keys Prometheus answered) and ``upstreams`` by upstream name. ``rate_window`` is the PromQL
    range the rates were taken over and ``samples_in_window`` the most samples any of the route's request
    counters has in that range (``None``: no counter at all); fewer than two means the window is shorter
    than the scrape interval allows. ``upstream_load``: the proxies' load signals by upstream name.
    ``query_errors``: the route's own queries Prometheus refused, as ``field: reason``."""

    time: float
    values: dict[MetricKey, float]
    upstreams: dict[str, UpstreamMetrics]
    rate_window: str = "1m"
    samples_in_window: float | None = None
    upstream_load: dict[str, UpstreamLoad] = field(default_factory=dict)
    query_errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scale:
    """The proxy Deployment's scale subresource: replicas asked for and replicas that exist."""

    spec_replicas: int
    status_replicas: int
