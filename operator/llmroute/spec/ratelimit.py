"""Rate-limit settings of an LLMRoute: tiers, identity, time-of-day multipliers, global store, shedding."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llmroute.spec.base import LIST_SET, CelRule, Model, Name, SecretKeyRef, TimeWindow, list_map


class ClientLimits(Model):
    """Limits for each single client key within a tier."""

    requests_per_minute: int | None = Field(
        None,
        ge=0,
        le=10**9,
        description="Requests per minute each client key may send. Unset: no per-client limit.",
    )
    tokens_per_minute: int | None = Field(
        None,
        ge=0,
        le=10**12,
        description="Tokens (prompt + completion) per minute each client key may use. Unset: no "
        "per-client limit.",
    )


class Tier(Model):
    """A class of clients. Higher ``priority`` is more important: admitted first and shed last."""

    name: Name = Field(description="Name of the tier, unique in rateLimits.tiers.")
    priority: int = Field(
        0, ge=0, le=1000, description="Higher is more important (admitted first, shed last); 0 to 1000."
    )
    requests_per_minute: int | None = Field(
        None,
        ge=0,
        le=10**9,
        description="Global figure across all replicas (each enforces its share). Unset: unlimited.",
    )
    tokens_per_minute: int | None = Field(
        None,
        ge=0,
        le=10**12,
        description="Tokens (prompt + completion) per minute, global across all replicas. Unset: unlimited.",
    )
    per_client: ClientLimits | None = Field(
        None, description="Limits for each single client key within the tier, on top of the tier's own."
    )
    api_keys_secret_ref: SecretKeyRef | None = Field(
        None,
        description="Secret key holding the tier's client API keys, one key (or sha256:<hex>) per line "
        "(identity type ApiKey).",
    )
    sheddable: bool = Field(
        True,
        description="Adaptive shedding may tighten this tier's limits under saturation; false exempts it.",
    )


class Identity(Model):
    """How a request is mapped to a tier: by its API key, or by a header set by a trusted front end."""

    type: Literal["ApiKey", "Header"] = Field(
        "ApiKey",
        description="ApiKey: the tier whose key list holds the request's API key. Header: the tier named "
        "in header, set by a trusted front end.",
    )
    header: str = Field(
        "x-llmroute-tier",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9-]+$",
        description="Request header naming the tier when type is Header.",
    )


class LimitSchedule(TimeWindow):
    """Multiply limits inside a window (below 1 at peak, above 1 off-peak)."""

    multiplier: float = Field(
        gt=0, le=100, description="Factor on the limits inside the window: below 1 tightens, above 1 loosens."
    )
    tiers: list[Name] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra=LIST_SET,
        description="Tiers the multiplier applies to (names in rateLimits.tiers). Empty: every tier.",
    )


class Store(Model):
    """Where the proxies count: each replica its own share (Local) or shared counters in Redis."""

    cel_rules = (
        CelRule(
            "!has(self.type) || self.type != 'Redis' || has(self.url)",
            "rateLimits.store.url is required when rateLimits.store.type is Redis",
        ),
    )

    type: Literal["Local", "Redis"] = Field(
        "Local",
        description="Local: each replica enforces its share of every limit. Redis: the replicas share exact "
        "counters in url.",
    )
    url: str | None = Field(
        None,
        pattern=r"^rediss?://\S+$",
        max_length=2048,
        description="redis:// or rediss:// URL of the shared store; required when type is Redis.",
    )
    password_secret_ref: SecretKeyRef | None = Field(
        None, description="Secret key holding the Redis password, if the store needs one."
    )

    @model_validator(mode="after")
    def _check(self) -> Store:
        if self.type == "Redis" and not self.url:
            raise ValueError("rateLimits.store.url is required when rateLimits.store.type is Redis")
        return self


class AdaptiveShedding(Model):
    """At max replicas and still saturated, tighten the lowest-priority tiers first; restore in order."""

    cel_rules = (
        CelRule(
            "!has(self.restoreThreshold) || !has(self.saturationThreshold) || "
            "self.restoreThreshold <= self.saturationThreshold",
            "rateLimits.adaptiveShedding.restoreThreshold must not exceed saturationThreshold",
        ),
    )

    enabled: bool = Field(True, description="Shed sheddable tiers under saturation at maxReplicas.")
    saturation_threshold: float = Field(
        0.9,
        gt=0,
        le=2,
        description="Utilisation (load / capacity of maxReplicas) above which, at maxReplicas, the lowest-"
        "priority sheddable tier is tightened one step.",
    )
    restore_threshold: float = Field(
        0.7,
        gt=0,
        le=2,
        description="Utilisation below which shed tiers are restored one step at a time, highest priority "
        "first; at most saturationThreshold.",
    )
    restore_after_seconds: int = Field(
        300,
        ge=0,
        le=86400,
        description="Seconds utilisation must stay below restoreThreshold before a restore.",
    )
    step_factor: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Each shed step multiplies the tier's limits by this factor (0.5: half, a quarter, ...).",
    )
    min_factor: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Floor of the shed multiplier: 0 lets a tier be shed entirely, 0.1 keeps a tenth.",
    )

    @model_validator(mode="after")
    def _check(self) -> AdaptiveShedding:
        if self.restore_threshold > self.saturation_threshold:
            raise ValueError(
                "rateLimits.adaptiveShedding.restoreThreshold must not exceed saturationThreshold"
            )
        return self


class RateLimits(Model):
    """Per-tier limits the proxies enforce, their time-of-day multipliers, the shared store and shedding."""

    cel_rules = (
        CelRule(
            "!has(self.defaultTier) || (has(self.tiers) && self.tiers.exists(t, t.name == self.defaultTier))",
            "rateLimits.defaultTier must name one of rateLimits.tiers",
            ".defaultTier",
        ),
        CelRule(
            "!has(self.schedules) || self.schedules.all(s, !has(s.tiers) || "
            "s.tiers.all(n, has(self.tiers) && self.tiers.exists(t, t.name == n)))",
            "rateLimits.schedules[].tiers must name tiers in rateLimits.tiers",
            ".schedules",
        ),
    )

    identity: Identity = Field(Identity(), description="How a request is mapped to a tier.")
    default_tier: Name | None = Field(
        None,
        description="Tier (one of tiers) for requests without an API key (identity ApiKey) or without a "
        "known tier header (identity Header). Unset: those requests get 401.",
    )
    tiers: list[Tier] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra=list_map("name"),
        description="Classes of clients with their limits. Empty: no authentication and no rate limits.",
    )
    schedules: list[LimitSchedule] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra=list_map("name"),
        description="Weekly windows that multiply the limits (tighter at peak, looser off-peak).",
    )
    store: Store = Field(Store(), description="Where the proxies count requests and tokens.")
    adaptive_shedding: AdaptiveShedding = Field(
        AdaptiveShedding(),
        description="Tighten the lowest-priority tiers first when the route is saturated at maxReplicas.",
    )

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
