"""The LLMRoute status: what the operator observed, decided and why (written by the operator only)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmroute.spec.base import Model

ConditionType = Literal["Ready", "MetricsAvailable", "ScalingLimited", "FailedOver", "Degraded"]
CONDITION_TYPES: tuple[ConditionType, ...] = (
    "Ready",
    "MetricsAvailable",
    "ScalingLimited",
    "FailedOver",
    "Degraded",
)


class Condition(Model):
    """A ``metav1.Condition`` (KEP-1623)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field("", max_length=32768)
    last_transition_time: str
    observed_generation: int | None = None


class Replicas(Model):
    desired: int | None = None
    current: int | None = None


class Recommendation(Model):
    """The parts of the last scaling decision; ``final`` is what was (or would be) written."""

    time: str
    reactive: int | None = None
    predictive: int | None = None
    schedule_min: int | None = None
    schedule_max: int | None = None
    final: int
    reason: str
    limited_by: list[str] = Field(default_factory=list)


class Decision(Model):
    time: str
    from_replicas: int = Field(alias="from")
    to_replicas: int = Field(alias="to")
    reason: str


class Load(Model):
    time: str
    requests_per_second: float | None = None
    inflight: float | None = None
    tokens_per_second: float | None = None
    latency_p95_seconds: float | None = None
    error_rate: float | None = None
    per_replica: float | None = None


class UpstreamStatus(Model):
    name: str
    group: int
    state: Literal["Healthy", "Unhealthy", "Recovering", "Unknown"]
    error_rate: float | None = None
    latency_p95_seconds: float | None = None
    since: str | None = None


class EffectiveLimit(Model):
    tier: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    per_replica_requests_per_minute: int | None = None
    per_replica_tokens_per_minute: int | None = None
    multiplier: float = 1.0
    shed_factor: float = 1.0


class Forecast(Model):
    time: str
    horizon_seconds: int
    value: float | None = None
    replicas: int | None = None
    error_percent: float | None = None
    active: bool = False
    reason: str = ""


class LLMRouteStatus(Model):
    model_config = Model.model_config | {"extra": "ignore"}

    observed_generation: int | None = None
    replicas: Replicas = Replicas()
    recommendation: Recommendation | None = None
    history: list[Decision] = Field(default_factory=list)
    load: Load | None = None
    upstreams: list[UpstreamStatus] = Field(default_factory=list)
    active_group: int | None = None
    effective_limits: list[EffectiveLimit] = Field(default_factory=list)
    forecast: Forecast | None = None
    config_hash: str | None = None
    controller_state: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
