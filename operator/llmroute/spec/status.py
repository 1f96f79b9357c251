"""The LLMRoute status: what the operator observed, decided and why (written by the operator only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from llmroute.spec.base import Model, list_map

ConditionType = Literal["Ready", "MetricsAvailable", "ScalingLimited", "FailedOver", "Degraded"]
CONDITION_TYPES: tuple[ConditionType, ...] = (
    "Ready",
    "MetricsAvailable",
    "ScalingLimited",
    "FailedOver",
    "Degraded",
)
HISTORY_MAX = 20
# RFC 3339 times, as Kubernetes writes them (e.g. 2026-01-01T00:00:00Z)
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
INT64: dict[str, Any] = {"format": "int64"}


class Condition(Model):
    """A ``metav1.Condition`` (KEP-1623)."""

    type: str = Field(
        max_length=316,
        description="Ready, MetricsAvailable, ScalingLimited, FailedOver or Degraded.",
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        min_length=1,
        max_length=1024,
        description="CamelCase reason for the condition's last transition.",
    )
    message: str = Field(max_length=32768, description="Human-readable details.")
    last_transition_time: Timestamp = Field(description="When status last changed.")
    observed_generation: int | None = Field(
        None, ge=0, json_schema_extra=INT64, description="The spec generation the condition was set for."
    )


class Replicas(Model):
    """The proxy's replica counts."""

    desired: int | None = Field(None, description="Replicas llmroute wants.")
    current: int | None = Field(None, description="Replicas the Deployment has.")


class Recommendation(Model):
    """The parts of the last scaling decision; ``final`` is what was (or would be) written."""

    time: Timestamp = Field(description="When the decision was made.")
    reactive: int | None = Field(None, description="Replicas the current load asks for.")
    predictive: int | None = Field(None, description="Replicas the forecast asks for.")
    schedule_min: int | None = Field(None, description="Replica floor of the open schedules.")
    schedule_max: int | None = Field(None, description="Replica ceiling of the open schedules.")
    final: int = Field(description="Replicas written (or that would be written when paused).")
    reason: str = Field(description="Why, in words.")
    limited_by: list[str] = Field(
        default_factory=list, description="What held the figure back (e.g. maxReplicas, tolerance, noData)."
    )


class Decision(Model):
    """One replica change."""

    time: Timestamp = Field(description="When replicas changed.")
    from_replicas: int = Field(alias="from", description="Replicas before.")
    to_replicas: int = Field(alias="to", description="Replicas after.")
    reason: str = Field(description="Why, in words.")


class Load(Model):
    """The route's load as last measured (missing figures are left out, never zero)."""

    time: Timestamp = Field(description="When it was measured.")
    requests_per_second: float | None = Field(None, description="Requests per second across the proxies.")
    inflight: float | None = Field(None, description="Requests in flight across the proxies.")
    tokens_per_second: float | None = Field(None, description="Tokens per second across the proxies.")
    latency_p95_seconds: float | None = Field(None, description="p95 request latency in seconds.")
    error_rate: float | None = Field(None, description="Share of requests that failed, 0 to 1.")
    per_replica: float | None = Field(
        None, description="Load per running replica in the scaling metric's unit."
    )


class UpstreamStatus(Model):
    """One upstream's health as the operator judges it."""

    name: str = Field(description="The upstream's name in spec.upstreams.")
    group: int = Field(description="Its priority group.")
    state: Literal["Healthy", "Unhealthy", "Recovering", "Unknown"] = Field(
        description="Healthy, Unhealthy (cooling down), Recovering (on probation) or Unknown (never judged)."
    )
    error_rate: float | None = Field(None, description="Error rate over the failover window, 0 to 1.")
    latency_p95_seconds: float | None = Field(
        None, description="p95 latency over the failover window, seconds."
    )
    since: Timestamp | None = Field(None, description="When it entered this state.")


class EffectiveLimit(Model):
    """One tier's limits in force now (after schedules and shedding)."""

    tier: str = Field(description="The tier's name in spec.rateLimits.tiers.")
    requests_per_minute: int | None = Field(None, description="Global requests per minute. Unset: unlimited.")
    tokens_per_minute: int | None = Field(None, description="Global tokens per minute. Unset: unlimited.")
    per_replica_requests_per_minute: int | None = Field(
        None, description="Each replica's share of requestsPerMinute."
    )
    per_replica_tokens_per_minute: int | None = Field(
        None, description="Each replica's share of tokensPerMinute."
    )
    multiplier: float = Field(1.0, description="Schedule multiplier in force.")
    shed_factor: float = Field(1.0, description="Adaptive-shedding factor in force (1: not shed).")


class Forecast(Model):
    """The predictive forecast and how far it is trusted."""

    time: Timestamp = Field(description="When the forecast was made.")
    horizon_seconds: int = Field(
        description="How far ahead it looks (spec.scaling.predictive.leadTimeSeconds)."
    )
    value: float | None = Field(None, description="Forecast load in the scaling metric's unit.")
    replicas: int | None = Field(None, description="Replicas the forecast load needs.")
    error_percent: float | None = Field(None, description="Recent weighted absolute percentage error.")
    active: bool = Field(False, description="Whether the forecast is acted on now.")
    reason: str = Field("", description="Why it is or is not acted on.")


class LLMRouteStatus(Model):
    """What the operator observed, decided and why."""

    model_config = Model.model_config | {"extra": "ignore"}

    observed_generation: int | None = Field(
        None, json_schema_extra=INT64, description="The spec generation the status reflects."
    )
    replicas: Replicas = Field(Replicas(), description="The proxy's desired and current replicas.")
    recommendation: Recommendation | None = Field(
        None, description="The last scaling decision and its parts."
    )
    history: list[Decision] = Field(
        default_factory=list, max_length=HISTORY_MAX, description="The last replica changes, oldest first."
    )
    load: Load | None = Field(None, description="The route's load as last measured.")
    upstreams: list[UpstreamStatus] = Field(default_factory=list, description="Each upstream's health.")
    active_group: int | None = Field(None, description="Upstream group serving traffic (0 = primary).")
    effective_limits: list[EffectiveLimit] = Field(
        default_factory=list, description="Each tier's limits in force now."
    )
    forecast: Forecast | None = Field(None, description="The predictive forecast.")
    config_hash: str | None = Field(None, description="Content hash of the proxy config last written.")
    controller_state: str | None = Field(
        None,
        max_length=65536,
        description="Internal JSON state the operator resumes from after a restart (stabilisation windows, "
        "shedding, failover).",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra=list_map("type"),
        description="Ready, MetricsAvailable, ScalingLimited, FailedOver and Degraded (KEP-1623).",
    )
