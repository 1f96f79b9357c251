"""Scaling settings of an LLMRoute: metric, target, HPA-style behaviour, prediction, schedules, fallback."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llmroute.spec.base import LIST_ATOMIC, LIST_SET, CelRule, Model, TimeWindow, list_map

MetricType = Literal["RequestsPerSecond", "InFlight", "TokensPerSecond", "Custom"]
Seasonality = Literal["Daily", "Weekly"]
SEASONALITIES: tuple[Seasonality, ...] = ("Daily", "Weekly")


class Metric(Model):
    """What load means and how much of it one replica should carry."""

    cel_rules = (
        CelRule(
            "has(self.type) && self.type == 'Custom' ? has(self.query) : !has(self.query)",
            "scaling.metric.query is required when type is Custom and only allowed then",
        ),
    )

    type: MetricType = Field(
        "RequestsPerSecond",
        description="The load signal: RequestsPerSecond, InFlight (concurrent requests), TokensPerSecond "
        "(prompt + completion), or Custom (the PromQL in query).",
    )
    query: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="PromQL giving the route's total load as one number ($route and $namespace are "
        "substituted); required when type is Custom and only allowed then.",
    )
    target_per_replica: float = Field(
        40.0,
        gt=0,
        le=1e9,
        description="Load one replica should carry, in the metric's unit (requests/s, in-flight requests, "
        "tokens/s); desired replicas = load / targetPerReplica.",
    )

    @model_validator(mode="after")
    def _check(self) -> Metric:
        if self.type == "Custom" and not self.query:
            raise ValueError("scaling.metric.query is required when scaling.metric.type is Custom")
        if self.type != "Custom" and self.query:
            raise ValueError("scaling.metric.query is only allowed when scaling.metric.type is Custom")
        return self


class ScalingPolicy(Model):
    """At most ``value`` pods (or percent of current) per ``period_seconds``."""

    type: Literal["Pods", "Percent"] = Field(
        description="Pods: value is a number of pods. Percent: value is a percentage of the current replicas."
    )
    value: int = Field(ge=1, le=10000, description="Pods or percent allowed to change within periodSeconds.")
    period_seconds: int = Field(
        ge=1, le=1800, description="Length of the window, in seconds, that the change is counted over."
    )


class ScalingRules(Model):
    """How fast replicas may change in one direction (HPA ``HPAScalingRules``)."""

    stabilization_window_seconds: int = Field(
        ge=0,
        le=3600,
        description="Seconds of past recommendations considered: scale-up takes their lowest, scale-down "
        "their highest, so short swings do not flap the replica count.",
    )
    select_policy: Literal["Max", "Min", "Disabled"] = Field(
        "Max",
        description="Which policy wins when several apply: Max (largest change), Min (smallest), or "
        "Disabled (no change in this direction).",
    )
    policies: list[ScalingPolicy] = Field(
        min_length=1,
        max_length=8,
        json_schema_extra=LIST_ATOMIC,
        description="Limits on the change per period; selectPolicy picks among them.",
    )


def _default_up() -> ScalingRules:
    return ScalingRules(
        stabilization_window_seconds=0,
        policies=[
            ScalingPolicy(type="Percent", value=100, period_seconds=15),
            ScalingPolicy(type="Pods", value=4, period_seconds=15),
        ],
    )


def _default_down() -> ScalingRules:
    return ScalingRules(
        stabilization_window_seconds=300,
        policies=[ScalingPolicy(type="Percent", value=100, period_seconds=15)],
    )


class Behavior(Model):
    """Kubernetes HPA ``behavior`` semantics, with the same defaults."""

    scale_up: ScalingRules = Field(
        default_factory=_default_up,
        description="Rules for adding replicas. Default: no stabilisation, at most +100 % or +4 pods "
        "(whichever is more) every 15 s.",
    )
    scale_down: ScalingRules = Field(
        default_factory=_default_down,
        description="Rules for removing replicas. Default: a 300 s stabilisation window, then at most "
        "-100 % every 15 s.",
    )


class Predictive(Model):
    """Learn the time-of-day (and day-of-week) load profile and pre-scale ``lead_time_seconds`` ahead."""

    enabled: bool = Field(True, description="Learn the load profile from Prometheus history and pre-scale.")
    mode: Literal["Active", "ForecastOnly"] = Field(
        "Active",
        description="Active: the forecast can add replicas. ForecastOnly: report it in status.forecast "
        "without acting.",
    )
    lookback_days: int = Field(7, ge=1, le=35, description="Days of history the profile is learned from.")
    seasonality: list[Seasonality] = Field(
        default_factory=lambda: list(SEASONALITIES),
        max_length=2,
        json_schema_extra=LIST_SET,
        description="Daily: compare with the same time on past days. Weekly: with the same time a week back "
        "(needs two weeks of history to help).",
    )
    lead_time_seconds: int = Field(
        300,
        ge=0,
        le=7200,
        description="Seconds ahead of the forecast load that its capacity should be ready (covers pod "
        "start-up).",
    )
    quantile: float = Field(
        0.9,
        ge=0.5,
        le=0.999,
        description="Share of past days that must have shown a rise before it is pre-scaled for; higher "
        "buys fewer replicas for one-off peaks.",
    )
    min_history_hours: int = Field(
        24, ge=1, le=840, description="Hours of history needed before the forecast is used."
    )
    max_error_percent: float = Field(
        35.0,
        gt=0,
        le=1000,
        description="Step prediction back while its recent weighted absolute percentage error is above this.",
    )

    @model_validator(mode="after")
    def _check(self) -> Predictive:
        if len(set(self.seasonality)) != len(self.seasonality):
            raise ValueError("scaling.predictive.seasonality must not repeat")
        return self


class Schedule(TimeWindow):
    """Replica bounds that apply inside a recurring time window."""

    cel_rules = (
        CelRule(
            "has(self.minReplicas) || has(self.maxReplicas)",
            "a schedule sets minReplicas, maxReplicas or both",
        ),
        CelRule(
            "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            "schedule minReplicas must not exceed its maxReplicas",
        ),
        *TimeWindow.cel_rules,
    )

    min_replicas: int | None = Field(
        None, ge=0, le=10000, description="Replica floor inside the window (raises proxy.minReplicas)."
    )
    max_replicas: int | None = Field(
        None,
        ge=1,
        le=10000,
        description="Replica ceiling inside the window (lowers proxy.maxReplicas, never raises it).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Schedule:
        if self.min_replicas is None and self.max_replicas is None:
            raise ValueError("a schedule sets minReplicas, maxReplicas or both")
        lo, hi = self.min_replicas, self.max_replicas
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("schedule minReplicas must not exceed its maxReplicas")
        return self


class Fallback(Model):
    """What to do when metrics are missing or stale. Neither choice ever scales down."""

    cel_rules = (
        CelRule(
            "!has(self.whenMetricsUnavailable) || self.whenMetricsUnavailable != 'Replicas' || "
            "has(self.replicas)",
            "scaling.fallback.replicas is required when whenMetricsUnavailable is Replicas",
        ),
    )

    when_metrics_unavailable: Literal["Hold", "Replicas"] = Field(
        "Hold",
        description="Hold: keep the current replicas. Replicas: scale up to at least replicas. Neither "
        "ever scales down.",
    )
    replicas: int | None = Field(
        None,
        ge=1,
        le=10000,
        description="Replica floor while metrics are unavailable; required when whenMetricsUnavailable is "
        "Replicas.",
    )
    stale_after_seconds: int = Field(
        180, ge=30, le=86400, description="Seconds after which the newest sample counts as missing."
    )

    @model_validator(mode="after")
    def _check(self) -> Fallback:
        if self.when_metrics_unavailable == "Replicas" and self.replicas is None:
            raise ValueError("scaling.fallback.replicas is required when whenMetricsUnavailable is Replicas")
        return self


class Scaling(Model):
    """How the replicas of the proxy follow the load (the HPA algorithm plus prediction and schedules)."""

    metric: Metric = Field(
        Metric(), description="What load means and how much of it one replica should carry."
    )
    tolerance: float = Field(
        0.1,
        ge=0,
        le=1,
        description="No change while load per replica is within this fraction of the target (0.1: ±10 %), "
        "as the HPA.",
    )
    behavior: Behavior = Field(
        Behavior(),
        description="How fast replicas may change, with the HorizontalPodAutoscaler's behavior semantics "
        "and defaults.",
    )
    predictive: Predictive = Field(
        Predictive(),
        description="Pre-scale ahead of the time-of-day (and day-of-week) load pattern learned from history.",
    )
    schedules: list[Schedule] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra=list_map("name"),
        description="Weekly windows that raise the replica floor or lower the ceiling (time zone aware).",
    )
    fallback: Fallback = Field(
        Fallback(), description="What to do when metrics are missing or stale; never scales down."
    )
