"""The LLMRoute spec: the typed, validated source of ``crds/llmroute.io_llmroutes.yaml`` (see :mod:`.crd`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from llmroute.spec.accesslog import AccessLogSpec
from llmroute.spec.base import CelRule, Model, list_map
from llmroute.spec.ratelimit import RateLimits
from llmroute.spec.scaling import Scaling
from llmroute.spec.upstream import Failover, LoadBalancing, ProxySpec, Upstream

PAUSE_ANNOTATION = "llmroute.io/paused"


class Cache(Model):
    """Exact-match response cache for reusable, non-streaming requests."""

    enabled: bool = Field(True, description="Serve repeated identical non-streaming requests from the cache.")
    ttl_seconds: int = Field(300, ge=1, le=604800, description="Seconds a cached response is served.")
    max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        le=64 * 1024**3,
        description="Cache size per replica in bytes; least recently used entries go first. Default: 64 MiB.",
    )
    max_entry_bytes: int = Field(
        1024 * 1024,
        ge=1,
        le=1024**3,
        description="Largest response in bytes that is cached. Default: 1 MiB.",
    )


class Alerts(Model):
    """Thresholds that set the ``Degraded`` condition and emit a Warning Event."""

    requests_per_second_above: float | None = Field(
        None, gt=0, description="Alert when the route's requests per second exceed this. Unset: no alert."
    )
    latency_p95_seconds_above: float | None = Field(
        None, gt=0, description="Alert when the route's p95 latency in seconds exceeds this. Unset: no alert."
    )
    error_rate_above: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Alert when the route's error rate (0 to 1) exceeds this. Unset: no alert.",
    )


class Queries(Model):
    """PromQL overrides. ``$route`` and ``$namespace`` are substituted; results are one number per query
    (``upstreamErrorRate`` and ``upstreamLatency`` one per ``upstream`` label)."""

    load: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="Route's total load in the scaling metric's unit (requests/s by default).",
    )
    inflight: str | None = Field(
        None, min_length=1, max_length=4096, description="Requests in flight across the route's proxies."
    )
    tokens: str | None = Field(
        None, min_length=1, max_length=4096, description="Tokens per second across the route's proxies."
    )
    error_rate: str | None = Field(
        None, min_length=1, max_length=4096, description="Route's error rate, 0 to 1."
    )
    latency_p95: str | None = Field(
        None, min_length=1, max_length=4096, description="Route's p95 request latency in seconds."
    )
    upstream_error_rate: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="Error rate per upstream (one series per upstream label).",
    )
    upstream_latency: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="p95 latency in seconds per upstream (one series per upstream label).",
    )
    upstream_requests: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="Requests per upstream over the failover window (one series per upstream label).",
    )


class PrometheusOverrides(Model):
    """Where and how this route's metrics are read, when the operator's defaults do not fit."""

    url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        max_length=2048,
        description="Prometheus base URL for this route. Unset: the operator's LLMROUTE_PROMETHEUS_URL.",
    )
    queries: Queries = Field(
        Queries(), description="PromQL overrides; $route and $namespace are substituted."
    )


class LLMRouteSpec(Model):
    """The desired state of an LLMRoute."""

    cel_rules = (
        CelRule(
            "self.upstreams.exists(u, u.group == 0)",
            "upstreams need at least one member of group 0 (the primary group)",
            ".upstreams",
        ),
        CelRule(
            "!has(self.scaling) || !has(self.scaling.schedules) || self.scaling.schedules.all(s, "
            "!has(s.maxReplicas) || s.maxReplicas <= self.proxy.maxReplicas)",
            "scaling.schedules[].maxReplicas exceeds proxy.maxReplicas",
            ".scaling.schedules",
        ),
    )

    paused: bool = Field(
        False,
        description="Compute and report decisions but write nothing to the workload (also the annotation "
        "llmroute.io/paused=true).",
    )
    reconcile_interval_seconds: int = Field(
        30, ge=5, le=3600, description="Seconds between the operator's decisions for this route."
    )
    proxy: ProxySpec = Field(
        ProxySpec(),
        description="The proxy Deployment. Name an existing one in deploymentName (llmroute only scales it) "
        "or leave it out and llmroute creates one from template.",
    )
    upstreams: list[Upstream] = Field(
        min_length=1,
        max_length=32,
        json_schema_extra=list_map("name"),
        description="OpenAI-compatible endpoints behind the route; group 0 is primary, higher groups take "
        "over in order when it is unhealthy.",
    )
    load_balancing: LoadBalancing = Field(
        "LeastConnections",
        description="How a proxy spreads requests over the active group: RoundRobin, Weighted (by weight), "
        "LeastConnections, or LatencyAware.",
    )
    failover: Failover = Field(
        Failover(), description="When an upstream counts as unhealthy and when traffic fails over and back."
    )
    scaling: Scaling = Field(Scaling(), description="How the proxy's replicas follow the load.")
    rate_limits: RateLimits = Field(
        RateLimits(), description="Per-tier request and token limits the proxies enforce. Default: none."
    )
    cache: Cache = Field(
        Cache(), description="Exact-match response cache for reusable, non-streaming requests."
    )
    alerts: Alerts = Field(
        Alerts(), description="Thresholds that set the Degraded condition and emit a Warning Event."
    )
    prometheus: PrometheusOverrides = Field(
        PrometheusOverrides(), description="Prometheus URL and PromQL overrides for this route."
    )
    access_log: AccessLogSpec = Field(
        AccessLogSpec(),
        description="The proxies' access log (one JSON line per request, for llmroute report). Default: off.",
    )

    @model_validator(mode="after")
    def _check(self) -> LLMRouteSpec:
        names = [u.name for u in self.upstreams]
        if len(set(names)) != len(names):
            raise ValueError("upstreams names must be unique")
        if 0 not in {u.group for u in self.upstreams}:
            raise ValueError("upstreams need at least one member of group 0 (the primary group)")
        for schedule in self.scaling.schedules:
            if schedule.max_replicas is not None and schedule.max_replicas > self.proxy.max_replicas:
                raise ValueError(f"scaling.schedules[{schedule.name}].maxReplicas exceeds proxy.maxReplicas")
        return self


class ObjectMeta(Model):
    """The part of ``metadata`` llmroute reads."""

    model_config = Model.model_config | {"extra": "ignore"}

    name: str
    namespace: str = "default"
    generation: int | None = None
    uid: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class LLMRoute(Model):
    """A whole LLMRoute object (status is read separately, see :mod:`llmroute.spec.status`)."""

    model_config = Model.model_config | {"extra": "ignore"}

    api_version: str = "llmroute.io/v1alpha1"
    kind: str = "LLMRoute"
    metadata: ObjectMeta
    spec: LLMRouteSpec

    @property
    def paused(self) -> bool:
        return self.spec.paused or self.metadata.annotations.get(PAUSE_ANNOTATION, "").lower() == "true"

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> LLMRoute:
        return cls.model_validate(obj)
