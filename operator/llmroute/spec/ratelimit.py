"""Rate-limit settings of an LLMRoute: tiers, identity, time-of-day multipliers, global store, shedding."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llmroute.spec.base import Model, Name, SecretKeyRef, TimeWindow


class ClientLimits(Model):
    """Limits for each single client key within a tier."""

    requests_per_minute: int | None = Field(None, ge=0, le=10**9)
    tokens_per_minute: int | None = Field(None, ge=0, le=10**12)


class Tier(Model):
    """A class of clients. Higher ``priority`` is more important: admitted first and shed last."""

    name: Name
    priority: int = Field(0, ge=0, le=1000)
    requests_per_minute: int | None = Field(None, ge=0, le=10**9)
    tokens_per_minute: int | None = Field(None, ge=0, le=10**12)
    per_client: ClientLimits | None = None
    api_keys_secret_ref: SecretKeyRef | None = None
    sheddable: bool = True


class Identity(Model):
    """How a request is mapped to a tier: by its API key, or by a header set by a trusted front end."""

    type: Literal["ApiKey", "Header"] = "ApiKey"
    header: str = Field("x-llmroute-tier", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9-]+$")


class LimitSchedule(TimeWindow):
    """Multiply limits inside a window (below 1 at peak, above 1 off-peak)."""

    multiplier: float = Field(gt=0, le=100)
    tiers: list[Name] = Field(default_factory=list, max_length=16)


class Store(Model):
    """Where the proxies count: each replica its own share (Local) or shared counters in Redis."""

    type: Literal["Local", "Redis"] = "Local"
    url: str | None = Field(None, pattern=r"^rediss?://\S+$", max_length=2048)
    password_secret_ref: SecretKeyRef | None = None

    @model_validator(mode="after")
    def _check(self) -> Store:
        if self.type == "Redis" and not self.url:
            raise ValueError("rateLimits.store.url is required when rateLimits.store.type is Redis")
        return self


class AdaptiveShedding(Model):
    """At max replicas and still saturated, tighten the lowest-priority tiers first; restore in order."""

    enabled: bool = True
    saturation_threshold: float = Field(0.9, gt=0, le=2)
    restore_threshold: float = Field(0.7, gt=0, le=2)
    restore_after_seconds: int = Field(300, ge=0, le=86400)
    step_factor: float = Field(0.5, gt=0, lt=1)
    min_factor: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _check(self) -> AdaptiveShedding:
        if self.restore_threshold > self.saturation_threshold:
            raise ValueError(
                "rateLimits.adaptiveShedding.restoreThreshold must not exceed saturationThreshold"
            )
        return self


class RateLimits(Model):
    identity: Identity = Identity()
    default_tier: Name | None = None
    tiers: list[Tier] = Field(default_factory=list, max_length=16)
    schedules: list[LimitSchedule] = Field(default_factory=list, max_length=32)
    store: Store = Store()
    adaptive_shedding: AdaptiveShedding = AdaptiveShedding()

    @model_validator(mode="after")
    def _check(self) -> RateLimits:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError("rateLimits.tiers names must be unique")
        if self.default_tier is not None and self.default_tier not in names:
            raise ValueError("rateLimits.defaultTier must name one of rateLimits.tiers")
        for schedule in self.schedules:
            unknown = [t for t in schedule.tiers if t not in names]
            if unknown:
                raise ValueError(f"rateLimits.schedules tiers {unknown} are not in rateLimits.tiers")
        return self
