"""The LLMRoute spec: the typed, validated mirror of ``crds/llmroute.io_llmroutes.yaml``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from llmroute.spec.base import Model
from llmroute.spec.ratelimit import RateLimits
from llmroute.spec.scaling import Scaling
from llmroute.spec.upstream import Failover, LoadBalancing, ProxySpec, Upstream

PAUSE_ANNOTATION = "llmroute.io/paused"


class Cache(Model):
    """Exact-match response cache for reusable, non-streaming requests."""

    enabled: bool = True
    ttl_seconds: int = Field(300, ge=1, le=604800)
    max_bytes: int = Field(64 * 1024 * 1024, ge=0, le=64 * 1024**3)
    max_entry_bytes: int = Field(1024 * 1024, ge=1, le=1024**3)


class Alerts(Model):
    """Thresholds that set the ``Degraded`` condition and emit a Warning Event."""

    requests_per_second_above: float | None = Field(None, gt=0)
    latency_p95_seconds_above: float | None = Field(None, gt=0)
    error_rate_above: float | None = Field(None, gt=0, le=1)


class Queries(Model):
    """PromQL overrides. ``$route`` and ``$namespace`` are substituted; results are one number per query
    (``upstreamErrorRate`` and ``upstreamLatency`` one per ``upstream`` label)."""

    load: str | None = Field(None, min_length=1, max_length=4096)
    inflight: str | None = Field(None, min_length=1, max_length=4096)
    tokens: str | None = Field(None, min_length=1, max_length=4096)
    error_rate: str | None = Field(None, min_length=1, max_length=4096)
    latency_p95: str | None = Field(None, min_length=1, max_length=4096)
    upstream_error_rate: str | None = Field(None, min_length=1, max_length=4096)
    upstream_latency: str | None = Field(None, min_length=1, max_length=4096)
    upstream_requests: str | None = Field(None, min_length=1, max_length=4096)


class PrometheusOverrides(Model):
    url: str | None = Field(None, pattern=r"^https?://\S+$", max_length=2048)
    queries: Queries = Queries()


class LLMRouteSpec(Model):
    paused: bool = False
    reconcile_interval_seconds: int = Field(30, ge=5, le=3600)
    proxy: ProxySpec = ProxySpec()
    upstreams: list[Upstream] = Field(min_length=1, max_length=32)
    load_balancing: LoadBalancing = "LeastConnections"
    failover: Failover = Failover()
    scaling: Scaling = Scaling()
    rate_limits: RateLimits = RateLimits()
    cache: Cache = Cache()
    alerts: Alerts = Alerts()
    prometheus: PrometheusOverrides = PrometheusOverrides()

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
