"""Scaling settings of an LLMRoute: metric, target, HPA-style behaviour, prediction, schedules, fallback."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llmroute.spec.base import Model, TimeWindow

MetricType = Literal["RequestsPerSecond", "InFlight", "TokensPerSecond", "Custom"]
Seasonality = Literal["Daily", "Weekly"]
SEASONALITIES: tuple[Seasonality, ...] = ("Daily", "Weekly")


class Metric(Model):
    """What load means and how much of it one replica should carry."""

    type: MetricType = "RequestsPerSecond"
    query: str | None = Field(None, min_length=1, max_length=4096)
    target_per_replica: float = Field(40.0, gt=0, le=1e9)

    @model_validator(mode="after")
    def _check(self) -> Metric:
        if self.type == "Custom" and not self.query:
            raise ValueError("scaling.metric.query is required when scaling.metric.type is Custom")
        if self.type != "Custom" and self.query:
            raise ValueError("scaling.metric.query is only allowed when scaling.metric.type is Custom")
        return self


class ScalingPolicy(Model):
    """At most ``value`` pods (or percent of current) per ``period_seconds``."""

    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1, le=10000)
    period_seconds: int = Field(ge=1, le=1800)


class ScalingRules(Model):
    stabilization_window_seconds: int = Field(ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy] = Field(min_length=1, max_length=8)


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

    scale_up: ScalingRules = Field(default_factory=_default_up)
    scale_down: ScalingRules = Field(default_factory=_default_down)


class Predictive(Model):
    """Learn the time-of-day (and day-of-week) load profile and pre-scale ``lead_time_seconds`` ahead."""

    enabled: bool = True
    mode: Literal["Active", "ForecastOnly"] = "Active"
    lookback_days: int = Field(7, ge=1, le=35)
    seasonality: list[Seasonality] = Field(default_factory=lambda: list(SEASONALITIES), max_length=2)
    lead_time_seconds: int = Field(300, ge=0, le=7200)
    quantile: float = Field(0.9, ge=0.5, le=0.999)
    min_history_hours: int = Field(24, ge=1, le=840)
    max_error_percent: float = Field(35.0, gt=0, le=1000)

    @model_validator(mode="after")
    def _check(self) -> Predictive:
        if len(set(self.seasonality)) != len(self.seasonality):
            raise ValueError("scaling.predictive.seasonality must not repeat")
        return self


class Schedule(TimeWindow):
    """Replica bounds that apply inside a recurring time window."""

    min_replicas: int | None = Field(None, ge=0, le=10000)
    max_replicas: int | None = Field(None, ge=1, le=10000)

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

    when_metrics_unavailable: Literal["Hold", "Replicas"] = "Hold"
    replicas: int | None = Field(None, ge=1, le=10000)
    stale_after_seconds: int = Field(180, ge=30, le=86400)

    @model_validator(mode="after")
    def _check(self) -> Fallback:
        if self.when_metrics_unavailable == "Replicas" and self.replicas is None:
            raise ValueError("scaling.fallback.replicas is required when whenMetricsUnavailable is Replicas")
        return self


class Scaling(Model):
    metric: Metric = Metric()
    tolerance: float = Field(0.1, ge=0, le=1)
    behavior: Behavior = Behavior()
    predictive: Predictive = Predictive()
    schedules: list[Schedule] = Field(default_factory=list, max_length=32)
    fallback: Fallback = Fallback()
