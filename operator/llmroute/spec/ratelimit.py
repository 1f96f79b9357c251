"""Rate-limit settings of an LLMRoute: tiers, identity, time-of-day multipliers, global store, shedding."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmroute.spec.base import (
    LIST_SET,
    CelRule,
    Model,
    Name,
    SecretKeyRef,
    TimeWindow,
    check_url_credentials,
    list_map,
    url_credentials_rule,
)

KIND = "(has(self.identity) && has(self.identity.type) ? self.identity.type : 'ApiKey')"  # CEL: the type
NO_IDENTITY = (
    "rateLimits: a route without tiers identifies no client, so anyone who reaches its Service spends the "
    "upstream keys: add tiers with apiKeysSecretRef (or identity type Header), or set "
    "rateLimits.identity.type: Unauthenticated to say so"
)
NO_KEYS = (
    "rateLimits.tiers: with identity type ApiKey at least one tier needs apiKeysSecretRef (without any, no "
    "caller can be verified)"
)
UNREACHABLE_TIER = (
    "rateLimits.tiers: with identity type ApiKey a tier without apiKeysSecretRef can only be the "
    "defaultTier (no caller could ever reach it)"
)
KEYS_UNUSED = "rateLimits.tiers[].apiKeysSecretRef is only read with identity type ApiKey"
UNAUTHENTICATED_TIERS = (
    "rateLimits.defaultTier: with identity type Unauthenticated every caller is in the defaultTier, so "
    "tiers may hold that one tier only"
)


class ClientLimits(Model):
    """Limits for each single client key within a tier."""

    requests_per_minute: int | None = Field(
        None,
        ge=1,
        le=10**9,
        description="Requests per minute each client key may send (at least 1: 0 would refuse every "
        "request). Unset: no per-client limit. With the Local store each replica enforces its share of "
        "it (never below 1 a minute), so a client whose requests all reach one replica gets that share; "
        "the Redis store enforces it exactly.",
    )
    tokens_per_minute: int | None = Field(
        None,
        ge=1,
        le=10**12,
        description="Tokens (prompt + completion) per minute each client key may use (at least 1). Unset: no "
        "per-client limit. Divided among replicas like requestsPerMinute.",
    )


class Tier(Model):
    """A class of clients. Higher ``priority`` is more important: admitted first and shed last."""

    name: Name = Field(description="Name of the tier, unique in rateLimits.tiers.")
    priority: int = Field(
        0, ge=0, le=1000, description="Higher is more important (admitted first, shed last); 0 to 1000."
    )
    requests_per_minute: int | None = Field(
        None,
        ge=1,
        le=10**9,
        description="Requests per minute, global across all replicas (each enforces its share, never below 1 "
        "a minute; at least 1: 0 would refuse every request). Unset: unlimited.",
    )
    tokens_per_minute: int | None = Field(
        None,
        ge=1,
        le=10**12,
        description="Tokens (prompt + completion) per minute, global across all replicas (at least 1). "
        "Unset: unlimited.",
    )
    per_client: ClientLimits | None = Field(
        None, description="Limits for each single client key within the tier, on top of the tier's own."
    )
    api_keys_secret_ref: SecretKeyRef | None = Field(
        None,
        description="Secret key holding the tier's client API keys, one key (or sha256:<hex>) per line. "
        "Identity type ApiKey only: every tier but the defaultTier needs one.",
    )
    sheddable: bool = Field(
        True,
        description="Adaptive shedding may tighten this tier's limits under saturation, and a request of "
        "the tier queued for a slot beyond proxy.queueTimeoutSeconds gets 503; false exempts it from both.",
    )


IdentityType = Literal["ApiKey", "Header", "Unauthenticated"]


class Identity(Model):
    """How a request is mapped to a tier: by its API key, by a header set by a trusted front end, or not at
    all (an explicitly unauthenticated route)."""

    type: IdentityType = Field(
        "ApiKey",
        description="ApiKey: the tier whose key list holds the request's API key (llmroute verifies it). "
        "Header: the tier named in header, set by a trusted front end. Unauthenticated: no client identity "
        "at all: anyone who reaches the Service spends the upstream keys (in defaultTier, if tiers are "
        "set); it must be spelled out, and the route reports Authenticated=False.",
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
        url_credentials_rule("url", "rateLimits.store.url", "use passwordSecretRef"),
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

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        return check_url_credentials(value, "rateLimits.store.url", "use passwordSecretRef")

    @model_validator(mode="after")
    def _check(self) -> Store:
        if self.type == "Redis" and not self.url:
            raise ValueError("rateLimits.store.url is required when rateLimits.store.type is Redis")
        return self


class AdaptiveShedding(Model):
    """At the replica ceiling and still saturated, tighten the lowest-priority tiers first; restore in
    order. The ceiling is proxy.maxReplicas, or the lower maxReplicas of an open scaling schedule."""

    cel_rules = (
        CelRule(
            "!has(self.restoreThreshold) || !has(self.saturationThreshold) || "
            "self.restoreThreshold <= self.saturationThreshold",
            "rateLimits.adaptiveShedding.restoreThreshold must not exceed saturationThreshold",
        ),
    )

    enabled: bool = Field(
        True,
        description="Shed sheddable tiers under saturation at the replica ceiling (proxy.maxReplicas, or "
        "an open scaling schedule's lower maxReplicas).",
    )
    saturation_threshold: float = Field(
        0.9,
        gt=0,
        le=2,
        description="Utilisation (load / capacity of the replicas asked for) above which, at the replica "
        "ceiling (proxy.maxReplicas, or an open scaling schedule's lower maxReplicas), the lowest-priority "
        "sheddable tier is tightened one step.",
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
        CelRule(
            f"{KIND} == 'Unauthenticated' || (has(self.tiers) && size(self.tiers) > 0)",
            NO_IDENTITY,
        ),
        CelRule(
            f"{KIND} != 'ApiKey' || !has(self.tiers) || size(self.tiers) == 0 || "
            "self.tiers.exists(t, has(t.apiKeysSecretRef))",
            NO_KEYS,
        ),
        CelRule(
            f"{KIND} != 'ApiKey' || !has(self.tiers) || self.tiers.all(t, has(t.apiKeysSecretRef) "
            "|| (has(self.defaultTier) && t.name == self.defaultTier))",
            UNREACHABLE_TIER,
        ),
        CelRule(
            f"{KIND} == 'ApiKey' || !has(self.tiers) || self.tiers.all(t, !has(t.apiKeysSecretRef))",
            KEYS_UNUSED,
        ),
        CelRule(
            f"{KIND} != 'Unauthenticated' || !has(self.tiers) || size(self.tiers) == 0 || "
            "(has(self.defaultTier) && self.tiers.all(t, t.name == self.defaultTier))",
            UNAUTHENTICATED_TIERS,
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
        description="Classes of clients with their limits. Empty: no client identity and no rate limits, "
        "only allowed with identity type Unauthenticated.",
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
        description="Tighten the lowest-priority tiers first when the route is saturated at its replica "
        "ceiling (proxy.maxReplicas, or an open scaling schedule's lower maxReplicas).",
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
        self._check_identity()
        return self

    def _check_identity(self) -> None:
        """The same checks as the identity CEL rules: no silent open relay, no tier nobody can reach."""
        kind, tiers, default = self.identity.type, self.tiers, self.default_tier
        keyed = [t for t in tiers if t.api_keys_secret_ref is not None]
        if kind != "Unauthenticated" and not tiers:
            raise ValueError(NO_IDENTITY)
        if kind == "ApiKey" and tiers and not keyed:
            raise ValueError(NO_KEYS)
        if kind == "ApiKey" and any(t.api_keys_secret_ref is None and t.name != default for t in tiers):
            raise ValueError(UNREACHABLE_TIER)
        if kind != "ApiKey" and keyed:
            raise ValueError(KEYS_UNUSED)
        if kind == "Unauthenticated" and tiers and (default is None or any(t.name != default for t in tiers)):
            raise ValueError(UNAUTHENTICATED_TIERS)
