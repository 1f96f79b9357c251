"""Proxy workload, upstream endpoints, load balancing and failover settings of an LLMRoute."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmroute import __version__
from llmroute.spec.base import Model, Name, SecretKeyRef

LoadBalancing = Literal["RoundRobin", "Weighted", "LeastConnections", "LatencyAware"]
DEFAULT_IMAGE = f"ghcr.io/llmroute/llmroute:{__version__}"  # the image built from this version's Dockerfile


class ResourceList(Model):
    cpu: str | None = None
    memory: str | None = None


class Resources(Model):
    requests: ResourceList = ResourceList(cpu="250m", memory="256Mi")
    limits: ResourceList = ResourceList(memory="512Mi")


class ProxyTemplate(Model):
    """How llmroute builds the proxy Deployment when it creates one."""

    image: str = Field(DEFAULT_IMAGE, min_length=1)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    port: int = Field(8080, ge=1, le=65535)
    resources: Resources = Resources()
    service_account_name: Name | None = None


class Timeouts(Model):
    connect_seconds: float = Field(5.0, gt=0, le=300)
    first_byte_seconds: float = Field(60.0, gt=0, le=3600)
    total_seconds: float = Field(600.0, gt=0, le=86400)


class Proxy(Model):
    """The proxy Deployment: an existing one to scale, or one llmroute creates from ``template``."""

    deployment_name: Name | None = None
    template: ProxyTemplate | None = None
    min_replicas: int = Field(1, ge=0, le=10000)
    max_replicas: int = Field(10, ge=1, le=10000)
    max_concurrency: int = Field(256, ge=1, le=100000)
    queue_timeout_seconds: float = Field(5.0, ge=0, le=600)
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    retries: int = Field(2, ge=0, le=10)
    timeouts: Timeouts = Timeouts()

    @model_validator(mode="after")
    def _check(self) -> Proxy:
        if self.min_replicas > self.max_replicas:
            raise ValueError("proxy.minReplicas must not exceed proxy.maxReplicas")
        if self.deployment_name is not None and self.template is not None:
            raise ValueError("set either proxy.deploymentName or proxy.template, not both")
        return self


class Upstream(Model):
    """An OpenAI-compatible endpoint. ``group`` 0 is primary, 1 the first fallback, and so on."""

    name: Name
    url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=2048)
    model: str = Field(min_length=1, max_length=256)
    upstream_model: str | None = Field(None, min_length=1, max_length=256)
    group: int = Field(0, ge=0, le=9)
    weight: int = Field(100, ge=0, le=10000)
    api_key_secret_ref: SecretKeyRef | None = None
    api_key: str | None = None

    @field_validator("api_key")
    @classmethod
    def _no_inline_key(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError("inline API keys are not allowed; use apiKeySecretRef")
        return value


class Failover(Model):
    """Active health (operator, from metrics) and passive health (proxy, from its own requests)."""

    error_rate_threshold: float = Field(0.25, gt=0, le=1)
    latency_threshold_seconds: float = Field(30.0, gt=0, le=3600)
    window_seconds: int = Field(120, ge=30, le=3600)
    min_requests: int = Field(10, ge=1, le=1000000)
    cooldown_seconds: int = Field(60, ge=0, le=86400)
    max_cooldown_seconds: int = Field(900, ge=0, le=86400)
    failback_after_seconds: int = Field(300, ge=0, le=86400)
    min_dwell_seconds: int = Field(120, ge=0, le=86400)
    recovery_factor: float = Field(0.5, gt=0, le=1)
    consecutive_failures: int = Field(3, ge=1, le=100)
    eject_seconds: int = Field(30, ge=1, le=3600)

    @model_validator(mode="after")
    def _check(self) -> Failover:
        if self.max_cooldown_seconds < self.cooldown_seconds:
            raise ValueError("failover.maxCooldownSeconds must be at least failover.cooldownSeconds")
        return self
