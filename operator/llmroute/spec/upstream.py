"""Proxy workload, upstream endpoints, load balancing and failover settings of an LLMRoute."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmroute import __version__
from llmroute.spec.base import (
    LIST_ATOMIC,
    CelRule,
    Model,
    Name,
    SecretKeyRef,
    check_url_credentials,
    url_credentials_rule,
)
from llmroute.spec.placement import LabelSelector, PodPlacement

LoadBalancing = Literal["RoundRobin", "Weighted", "LeastConnections", "LatencyAware", "ResourceAware"]
EngineType = Literal["Auto", "vLLM", "SGLang", "TGI"]
URL_PATTERN = r"^https?://[^\s/]+(/\S*)?$"
DEFAULT_IMAGE = f"ghcr.io/llmroute/llmroute:{__version__}"  # the image built from this version's Dockerfile


def image_problem(reference: str) -> str | None:
    """Why ``reference`` cannot be a container image reference (empty, or with white space), else
    ``None``."""
    if not reference or any(c.isspace() for c in reference):
        return "not a container image reference (empty, or with white space)"
    return None


class ResourceList(Model):
    """CPU and memory quantities, as in a container's ``resources``."""

    cpu: str | None = Field(None, description="CPU quantity, e.g. 250m or 1.")
    memory: str | None = Field(None, description="Memory quantity, e.g. 256Mi.")


class Resources(Model):
    """The proxy container's resource requests and limits."""

    requests: ResourceList = Field(
        ResourceList(cpu="250m", memory="256Mi"),
        description="Resources the scheduler reserves per proxy pod. Default: cpu 250m, memory 256Mi.",
    )
    limits: ResourceList = Field(
        ResourceList(memory="512Mi"),
        description="Most a proxy pod may use. Default: memory 512Mi, no CPU limit.",
    )


class ProxyTemplate(PodPlacement):
    """How llmroute builds the proxy Deployment when it creates one (placement and policy fields from
    :class:`~llmroute.spec.placement.PodPlacement`)."""

    cel_rules = (
        CelRule(
            "!has(self.metricsPort) || !has(self.port) || self.metricsPort != self.port",
            "proxy.template.metricsPort must differ from port",
        ),
    )

    image: str | None = Field(
        None,
        min_length=1,
        description="Proxy container image. Unset: the operator's proxy image (the chart's image), so the "
        "proxies follow an upgrade of the operator.",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="Container image pull policy."
    )
    port: int = Field(
        8080,
        ge=1,
        le=65535,
        description="Port the proxy serves the OpenAI-compatible API on; the only port its Service exposes.",
    )
    metrics_port: int = Field(
        9090,
        ge=1,
        le=65535,
        description="Port of the proxy's /metrics, /healthz and /readyz (Prometheus and the kubelet only; "
        "not in the Service). Must differ from port.",
    )
    resources: Resources = Field(
        Resources(), description="The proxy container's resource requests and limits."
    )
    service_account_name: Name | None = Field(
        None,
        description="ServiceAccount the proxy pods run as. Unset: one llmroute creates (`<name>-proxy`); "
        "either way it is bound to a Role that reads and watches the route's ConfigMap and nothing else.",
    )

    @model_validator(mode="after")
    def _check(self) -> ProxyTemplate:
        if self.metrics_port == self.port:
            raise ValueError("proxy.template.metricsPort must differ from port")
        return self


class NetworkPeer(Model):
    """Where traffic may come from, as in a NetworkPolicy peer: pods matching ``podSelector`` in the
    namespaces matching ``namespaceSelector`` (either unset: the route's namespace, or any pod in it)."""

    pod_selector: LabelSelector | None = Field(
        None, description="Pods allowed in. Unset: every pod of the selected namespaces."
    )
    namespace_selector: LabelSelector | None = Field(
        None, description="Namespaces those pods may be in. Unset: the route's own namespace."
    )


class NetworkPolicySpec(Model):
    """A NetworkPolicy llmroute renders with the proxy (only when it creates the proxy Deployment)."""

    enabled: bool = Field(
        False, description="Render a NetworkPolicy <route>-proxy that admits only the peers below."
    )
    api_from: list[NetworkPeer] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra=LIST_ATOMIC,
        description="Who may call the API port. Empty: the pods of the route's own namespace.",
    )
    metrics_from: list[NetworkPeer] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra=LIST_ATOMIC,
        description="Who may read the metrics port (Prometheus; the kubelet's probes are always allowed). "
        "Empty: pods of any namespace (the metrics carry no secrets).",
    )


class Timeouts(Model):
    """Timeouts of each request the proxy sends upstream."""

    connect_seconds: float = Field(5.0, gt=0, le=300, description="Seconds to open a connection upstream.")
    first_byte_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Seconds until the upstream's first response byte (time to first token when streaming).",
    )
    idle_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Seconds a stream may go without a chunk once it has started; then it is cut with an "
        "error event (totalSeconds still bounds the whole request).",
    )
    total_seconds: float = Field(
        600.0, gt=0, le=86400, description="Seconds for the whole upstream request, streaming included."
    )


POLICY_NEEDS_TEMPLATE = (
    "proxy.networkPolicy is rendered only with a Deployment llmroute creates (not with deploymentName)"
)


class ProxySpec(Model):
    """The proxy Deployment: an existing one to scale, or one llmroute creates from ``template``."""

    cel_rules = (
        CelRule(
            "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            "proxy.minReplicas must not exceed proxy.maxReplicas",
        ),
        CelRule(
            "!(has(self.deploymentName) && has(self.template))",
            "set either proxy.deploymentName or proxy.template, not both",
        ),
        CelRule(
            "!has(self.deploymentName) || !has(self.networkPolicy) || !has(self.networkPolicy.enabled) || "
            "!self.networkPolicy.enabled",
            POLICY_NEEDS_TEMPLATE,
        ),
    )

    deployment_name: Name | None = Field(
        None,
        description="An existing proxy Deployment in the route's namespace: llmroute only scales it. "
        "Unset: llmroute creates <route>-proxy from template.",
    )
    template: ProxyTemplate | None = Field(
        None, description="How llmroute builds the proxy Deployment (when deploymentName is unset)."
    )
    min_replicas: int = Field(1, ge=0, le=10000, description="Fewest proxy replicas, whatever the load.")
    max_replicas: int = Field(10, ge=1, le=10000, description="Most proxy replicas, whatever the load.")
    max_concurrency: int = Field(
        256,
        ge=1,
        le=100000,
        description="Concurrent upstream requests per replica; beyond it requests queue by tier priority.",
    )
    queue_timeout_seconds: float = Field(
        5.0,
        ge=0,
        le=600,
        description="Seconds a queued request waits for a slot before it gets 503 (overloaded, with "
        "Retry-After: the proxy is full, not the client's rate limit); a tier that is not sheddable waits "
        "until a slot is free.",
    )
    max_body_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Largest request body in bytes; larger ones get 413. Default: 10 MiB.",
    )
    retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of a failed request on another upstream, only before the first byte reached "
        "the client.",
    )
    timeouts: Timeouts = Field(Timeouts(), description="Timeouts of each request the proxy sends upstream.")
    network_policy: NetworkPolicySpec = Field(
        NetworkPolicySpec(),
        description="An optional NetworkPolicy rendered with the proxy, admitting only the given peers.",
    )

    @model_validator(mode="after")
    def _check(self) -> ProxySpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("proxy.minReplicas must not exceed proxy.maxReplicas")
        if self.deployment_name is not None and self.template is not None:
            raise ValueError("set either proxy.deploymentName or proxy.template, not both")
        if self.deployment_name is not None and self.network_policy.enabled:
            raise ValueError(POLICY_NEEDS_TEMPLATE)
        return self


class Engine(Model):
    """A self-hosted inference engine behind an upstream, whose own metrics the proxies read."""

    cel_rules = (
        url_credentials_rule(
            "metricsUrl", "upstreams[].engine.metricsUrl", "the engine's metrics are read without any"
        ),
    )

    type: EngineType = Field(
        "Auto",
        description="The engine: vLLM, SGLang or TGI; Auto recognises it by the names of its metrics.",
    )
    metrics_url: str | None = Field(
        None,
        pattern=URL_PATTERN,
        max_length=2048,
        description="The engine's Prometheus metrics endpoint (no credentials are sent to it). Default: "
        "/metrics on the upstream url's scheme, host and port.",
    )

    @field_validator("metrics_url")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        return check_url_credentials(
            value, "upstreams[].engine.metricsUrl", "the engine's metrics are read without any"
        )


class EngineMetrics(Model):
    """How often the proxies read the metrics of upstreams with an ``engine`` (ResourceAware balancing)."""

    cel_rules = (
        CelRule(
            "!has(self.scrapeTimeoutSeconds) || !has(self.scrapeIntervalSeconds) || "
            "self.scrapeTimeoutSeconds <= self.scrapeIntervalSeconds",
            "engineMetrics.scrapeTimeoutSeconds must not exceed engineMetrics.scrapeIntervalSeconds",
        ),
    )

    scrape_interval_seconds: float = Field(
        1.0,
        ge=0.1,
        le=60,
        description="Seconds between two reads of each engine's metrics. A reading older than three "
        "intervals is stale: that upstream is balanced by the proxy's own connection count.",
    )
    scrape_timeout_seconds: float = Field(
        0.5, gt=0, le=60, description="Seconds one read may take before it counts as failed."
    )

    @model_validator(mode="after")
    def _check(self) -> EngineMetrics:
        if self.scrape_timeout_seconds > self.scrape_interval_seconds:
            raise ValueError(
                "engineMetrics.scrapeTimeoutSeconds must not exceed engineMetrics.scrapeIntervalSeconds"
            )
        return self


class Upstream(Model):
    """An OpenAI-compatible endpoint. ``group`` 0 is primary, 1 the first fallback, and so on."""

    cel_rules = (
        CelRule("!has(self.apiKey)", "inline API keys are not allowed; use apiKeySecretRef", ".apiKey"),
        url_credentials_rule("url", "upstreams[].url", "use apiKeySecretRef"),
    )

    name: Name = Field(description="Name of the upstream, unique in upstreams; used in metrics and status.")
    url: str = Field(
        pattern=URL_PATTERN,
        max_length=2048,
        description="Base URL of the OpenAI-compatible API, e.g. https://api.openai.com/v1.",
    )
    model: str = Field(min_length=1, max_length=256, description="Model name clients request")
    upstream_model: str | None = Field(
        None, min_length=1, max_length=256, description="Model name sent upstream (defaults to model)"
    )
    group: int = Field(0, ge=0, le=9, description="Priority group: 0 primary, 1 first fallback, ...")
    weight: int = Field(
        100,
        ge=0,
        le=10000,
        description="Relative share of the group's traffic under loadBalancing Weighted; 0: never used.",
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        None,
        description="Secret key holding the upstream's API key (mounted into the proxy pods, never put in "
        "the ConfigMap).",
    )
    api_key: str | None = Field(
        None, description="Not allowed. API keys live in Secrets; use apiKeySecretRef."
    )
    engine: Engine | None = Field(
        None,
        description="A self-hosted engine (vLLM, SGLang, TGI) whose queue and KV-cache metrics the proxies "
        "read for loadBalancing ResourceAware. Unset: a hosted API, judged by its x-ratelimit headers.",
    )

    @field_validator("api_key")
    @classmethod
    def _no_inline_key(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("inline API keys are not allowed; use apiKeySecretRef")
        return value

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        check_url_credentials(value, "upstreams[].url", "use apiKeySecretRef")
        return value


class Failover(Model):
    """Active health (operator, from metrics) and passive health (proxy, from its own requests)."""

    cel_rules = (
        CelRule(
            "!has(self.maxCooldownSeconds) || !has(self.cooldownSeconds) || "
            "self.maxCooldownSeconds >= self.cooldownSeconds",
            "failover.maxCooldownSeconds must be at least failover.cooldownSeconds",
        ),
    )

    error_rate_threshold: float = Field(
        0.25,
        gt=0,
        le=1,
        description="An upstream whose error rate over the window is above this is unhealthy.",
    )
    latency_threshold_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="An upstream whose p95 latency over the window is above this many seconds is unhealthy.",
    )
    window_seconds: int = Field(
        120, ge=30, le=3600, description="Seconds of metrics the error rate and latency are measured over."
    )
    min_requests: int = Field(
        10, ge=1, le=1000000, description="Fewer requests than this in the window give no verdict."
    )
    cooldown_seconds: int = Field(
        60,
        ge=0,
        le=86400,
        description="Seconds an unhealthy upstream stays out before it may recover; doubles for each failure "
        "in a row. It may recover only once windowSeconds have passed too, so that the figures that made it "
        "unhealthy never decide its recovery.",
    )
    max_cooldown_seconds: int = Field(
        900,
        ge=0,
        le=86400,
        description="Longest cooldown; also how long an upstream must stay healthy before its failures are "
        "forgotten.",
    )
    failback_after_seconds: int = Field(
        300,
        ge=0,
        le=86400,
        description="Seconds a recovering upstream must stay below the recovery thresholds before it is "
        "healthy again.",
    )
    min_dwell_seconds: int = Field(
        120,
        ge=0,
        le=86400,
        description="Seconds after a group switch before traffic moves back to a better group.",
    )
    recovery_factor: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A recovering upstream must be below threshold x recoveryFactor on both figures "
        "(hysteresis).",
    )
    consecutive_failures: int = Field(
        3, ge=1, le=100, description="Failures in a row after which a proxy ejects an upstream on its own."
    )
    eject_seconds: int = Field(
        30,
        ge=1,
        le=3600,
        description="Seconds a proxy keeps an upstream ejected; doubles on repeat, at most "
        "maxCooldownSeconds.",
    )

    @model_validator(mode="after")
    def _check(self) -> Failover:
        if self.max_cooldown_seconds < self.cooldown_seconds:
            raise ValueError("failover.maxCooldownSeconds must be at least failover.cooldownSeconds")
        return self
