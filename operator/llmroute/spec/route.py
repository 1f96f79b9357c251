"""The LLMRoute spec: the typed, validated source of ``crds/llmroute.io_llmroutes.yaml`` (see :mod:`.crd`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llmroute.spec.accesslog import AccessLogSpec
from llmroute.spec.base import CelRule, Model, check_url_credentials, list_map, url_credentials_rule
from llmroute.spec.ratelimit import RateLimits
from llmroute.spec.scaling import Scaling
from llmroute.spec.upstream import EngineMetrics, Failover, LoadBalancing, ProxySpec, Upstream

PAUSE_ANNOTATION = "llmroute.io/paused"


CACHE_SIZES = (
    "cache: maxEntryBytes must not exceed maxBytes, and an enabled cache needs maxBytes above 0 (set "
    "enabled: false to turn it off)"
)


class Cache(Model):
    """Exact-match response cache for reusable, non-streaming requests."""

    cel_rules = (
        CelRule(
            "!has(self.enabled) || !self.enabled || !has(self.maxBytes) || !has(self.maxEntryBytes) || "
            "(self.maxBytes > 0 && self.maxEntryBytes <= self.maxBytes)",
            CACHE_SIZES,
        ),
    )

    enabled: bool = Field(
        True,
        description="Serve repeated identical non-streaming requests from the cache (only to callers "
        "llmroute verified by API key: the upstream might refuse anyone else).",
    )
    scope: Literal["Client", "Tier", "Route"] = Field(
        "Client",
        description="Who an entry may answer. Client: only the client key that stored it. Tier: any client "
        "of the same tier. Route: any verified client of the route. Sharing saves upstream calls, but a hit "
        "then tells a client that someone else sent the very same request (and shows them its answer).",
    )
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
        description="Largest response in bytes that is cached (at most maxBytes). Default: 1 MiB.",
    )

    @model_validator(mode="after")
    def _check(self) -> Cache:
        if self.enabled and (self.max_bytes <= 0 or self.max_entry_bytes > self.max_bytes):
            raise ValueError(CACHE_SIZES)
        return self


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

    cel_rules = (
        url_credentials_rule(
            "url", "prometheus.url", "the operator's Prometheus credentials (prometheusAuth) are used"
        ),
    )

    url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        max_length=2048,
        description="Prometheus base URL for this route. Unset: the operator's LLMROUTE_PROMETHEUS_URL.",
    )
    queries: Queries = Field(
        Queries(), description="PromQL overrides; $route and $namespace are substituted."
    )
    scrape_interval_seconds: int | None = Field(
        None,
        ge=1,
        le=3600,
        description="How often this route's Prometheus scrapes its proxies, in seconds. The operator's rate "
        "and failover windows span four scrapes. Unset: the operator's LLMROUTE_SCRAPE_INTERVAL_SECONDS.",
    )

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        return check_url_credentials(
            value, "prometheus.url", "the operator's Prometheus credentials (prometheusAuth) are used"
        )


SCHEDULE_MIN_ABOVE_MAX = "scaling.schedules[].minReplicas exceeds proxy.maxReplicas"
ZERO_WEIGHT_GROUP = (
    "upstreams: every group needs a member with weight above 0 (a group whose weights are all 0 serves "
    "nothing, and the proxy answers 503 while it is active)"
)
SCALE_FROM_ZERO = (
    "proxy.minReplicas 0 cannot come back from zero: the scaling metric is read from the proxies "
    "themselves, and with no replica no pod reports load; use minReplicas 1 or more, or a Custom metric "
    "measured in front of the proxies"
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
        CelRule(
            "!has(self.scaling) || !has(self.scaling.schedules) || self.scaling.schedules.all(s, "
            "!has(s.minReplicas) || s.minReplicas <= self.proxy.maxReplicas)",
            SCHEDULE_MIN_ABOVE_MAX,
        ),
        CelRule(
            "self.upstreams.all(u, self.upstreams.exists(v, (has(v.group) ? v.group : 0) == "
            "(has(u.group) ? u.group : 0) && (!has(v.weight) || v.weight > 0)))",
            ZERO_WEIGHT_GROUP,
        ),
        CelRule(
            "!has(self.proxy) || !has(self.proxy.minReplicas) || self.proxy.minReplicas > 0 || "
            "(has(self.scaling) && has(self.scaling.metric) && has(self.scaling.metric.type) && "
            "self.scaling.metric.type == 'Custom')",
            SCALE_FROM_ZERO,
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
        "LeastConnections, LatencyAware, or ResourceAware (engines' queue and KV cache, hosted APIs' "
        "remaining quota, in-flight requests and latency in one score, power of two choices).",
    )
    engine_metrics: EngineMetrics = Field(
        EngineMetrics(),
        description="How often and how patiently the proxies read the metrics of upstreams with an engine.",
    )
    failover: Failover = Field(
        Failover(), description="When an upstream counts as unhealthy and when traffic fails over and back."
    )
    scaling: Scaling = Field(Scaling(), description="How the proxy's replicas follow the load.")
    rate_limits: RateLimits = Field(
        description="Who the route's clients are and the per-tier request and token limits the proxies "
        "enforce. Required, so that a route open to anyone says so (identity type Unauthenticated)."
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
            if schedule.min_replicas is not None and schedule.min_replicas > self.proxy.max_replicas:
                raise ValueError(SCHEDULE_MIN_ABOVE_MAX)
        for group in {u.group for u in self.upstreams}:
            if all(u.weight == 0 for u in self.upstreams if u.group == group):
                raise ValueError(ZERO_WEIGHT_GROUP)
        if self.proxy.min_replicas == 0 and self.scaling.metric.type != "Custom":
            raise ValueError(SCALE_FROM_ZERO)
        return self


ROUTE_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
MAX_NAME = 63 - len("-proxy")
BAD_NAME = (
    f"metadata.name must be a DNS-1035 label of at most {MAX_NAME} characters (lowercase letters, digits "
    "and '-', starting with a letter): llmroute names the proxy's Service <name>-proxy"
)


class ObjectMeta(Model):
    """The part of ``metadata`` llmroute reads. ``name`` must leave room for the children's names: the
    Service ``<name>-proxy`` is a DNS-1035 label (at most 63 characters, starting with a letter)."""

    model_config = Model.model_config | {"extra": "ignore"}

    name: str = Field(pattern=ROUTE_NAME, max_length=MAX_NAME)
    namespace: str = "default"
    generation: int | None = None
    uid: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class LLMRoute(Model):
    """A whole LLMRoute object (status is read separately, see :mod:`llmroute.spec.status`)."""

    model_config = Model.model_config | {"extra": "ignore"}
    cel_rules = (
        CelRule(
            f"self.metadata.name.size() <= {MAX_NAME} && self.metadata.name.matches('{ROUTE_NAME}')",
            BAD_NAME,
        ),
    )

    api_version: str = "llmroute.io/v1alpha1"
    kind: str = "LLMRoute"
    metadata: ObjectMeta
    spec: LLMRouteSpec

    @property
    def paused(self) -> bool:
        return self.spec.paused or self.metadata.annotations.get(PAUSE_ANNOTATION, "").lower() == "true"

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> LLMRoute:
        """``obj`` (a manifest or what the apiserver returns) validated as the CRD's schema types it
        (:func:`json_numbers`, strict); raises pydantic's ``ValidationError``."""
        return cls.model_validate(json_numbers(obj), strict=True)


def json_numbers(value: Any) -> Any:
    """``value`` with each float that has no fractional part made an integer (``5.0`` -> ``5``), as the
    apiserver's JSON decoder reads numbers. Validated strictly then, the models take what the schema
    takes: ``5.0`` where an integer goes, ``5`` where a number goes, but not ``"5"`` nor ``"true"``
    (pydantic's lax mode reads those as 5 and True: ``llmroute validate`` passed routes the apiserver
    refuses). The apiserver's CEL rules alone refuse ``5.0`` in a field they read ("expected int, got
    float64"); the models read it as 5 there too."""
    if isinstance(value, dict):
        return {k: json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
