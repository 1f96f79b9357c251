"""Shared table of invalid LLMRoutes: each must be rejected by the apiserver (CRD schema + CEL) and by the
pydantic models, with a message that names the field."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

UPSTREAM = {"name": "primary", "url": "http://127.0.0.1:9/v1", "model": "m"}


def route(name: str = "r", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"upstreams": [dict(UPSTREAM)]}
    body.update(copy.deepcopy(spec))
    return {
        "apiVersion": "llmroute.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"name": name},
        "spec": body,
    }


def window(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "w",
        "timezone": "UTC",
        "start": "08:00",
        "end": "18:00",
        "minReplicas": 2,
    }
    base.update(kw)
    return base


@dataclass(frozen=True)
class Invalid:
    id: str
    spec: dict[str, Any]
    api_message: str  # substring of the apiserver's rejection (names the field)
    model_message: str  # substring of the pydantic error (field path or rule)
    extra: dict[str, Any] = field(default_factory=dict)


TIERS = [{"name": "gold", "priority": 10}, {"name": "free"}]

INVALID: list[Invalid] = [
    Invalid(
        "min-gt-max",
        {"proxy": {"minReplicas": 5, "maxReplicas": 2}},
        "proxy.minReplicas must not exceed proxy.maxReplicas",
        "minReplicas must not exceed",
    ),
    Invalid(
        "deployment-and-template",
        {"proxy": {"deploymentName": "x", "template": {}}},
        "set either proxy.deploymentName or proxy.template",
        "either proxy.deploymentName",
    ),
    Invalid("no-upstreams", {"upstreams": []}, "spec.upstreams: Invalid value", "upstreams"),
    Invalid(
        "duplicate-upstream",
        {"upstreams": [UPSTREAM, UPSTREAM]},
        "spec.upstreams[1]: Duplicate value",
        "upstreams names must be unique",
    ),
    Invalid(
        "inline-api-key",
        {"upstreams": [dict(UPSTREAM, apiKey="sk-secret")]},
        "spec.upstreams[0].apiKey: Invalid value",
        "inline API keys are not allowed",
    ),
    Invalid(
        "bad-upstream-url",
        {"upstreams": [dict(UPSTREAM, url="ftp://x")]},
        "spec.upstreams[0].url",
        "upstreams.0.url",
    ),
    Invalid(
        "bad-upstream-name",
        {"upstreams": [dict(UPSTREAM, name="Bad_Name")]},
        "spec.upstreams[0].name",
        "upstreams.0.name",
    ),
    Invalid(
        "no-primary-group",
        {"upstreams": [dict(UPSTREAM, group=1)]},
        "at least one member of group 0",
        "at least one member of group 0",
    ),
    Invalid(
        "group-too-high",
        {"upstreams": [dict(UPSTREAM, group=12)]},
        "spec.upstreams[0].group",
        "upstreams.0.group",
    ),
    Invalid(
        "unknown-metric",
        {"scaling": {"metric": {"type": "GPUUtilisation"}}},
        "spec.scaling.metric.type: Unsupported value",
        "scaling.metric.type",
    ),
    Invalid(
        "custom-without-query",
        {"scaling": {"metric": {"type": "Custom"}}},
        "scaling.metric.query is required",
        "scaling.metric.query is required",
    ),
    Invalid(
        "zero-target",
        {"scaling": {"metric": {"targetPerReplica": 0}}},
        "spec.scaling.metric.targetPerReplica",
        "scaling.metric.targetPerReplica",
    ),
    Invalid(
        "bad-timezone",
        {"scaling": {"schedules": [window(timezone="Mars/Olympus_Mons")]}},
        # runtime CEL errors are reported on the object; the message names the value and the field
        'spec.scaling.schedules[0]: Invalid value: "object": unknown time zone Mars/Olympus_Mons '
        "evaluating rule: timezone must be an IANA time zone",
        "unknown time zone",
    ),
    Invalid(
        "bad-time",
        {"scaling": {"schedules": [window(start="25:00")]}},
        "spec.scaling.schedules[0].start",
        "scaling.schedules.0.start",
    ),
    Invalid(
        "empty-window",
        {"scaling": {"schedules": [window(start="08:00", end="08:00")]}},
        "start and end must differ",
        "start and end must differ",
    ),
    Invalid(
        "bad-weekday",
        {"scaling": {"schedules": [window(days=["Funday"])]}},
        "spec.scaling.schedules[0].days[0]: Unsupported value",
        "scaling.schedules.0.days.0",
    ),
    Invalid(
        "schedule-without-bounds",
        {"scaling": {"schedules": [window(minReplicas=None)]}},
        "a schedule sets minReplicas, maxReplicas or both",
        "a schedule sets minReplicas",
    ),
    Invalid(
        "schedule-above-max",
        {"scaling": {"schedules": [window(maxReplicas=50)]}},
        "exceeds proxy.maxReplicas",
        "exceeds proxy.maxReplicas",
    ),
    Invalid(
        "bad-policy-type",
        {
            "scaling": {
                "behavior": {
                    "scaleUp": {
                        "stabilizationWindowSeconds": 0,
                        "policies": [{"type": "Replicas", "value": 1, "periodSeconds": 15}],
                    }
                }
            }
        },
        "spec.scaling.behavior.scaleUp.policies[0].type: Unsupported value",
        "scaling.behavior.scaleUp.policies.0.type",
    ),
    Invalid(
        "negative-tolerance", {"scaling": {"tolerance": -0.1}}, "spec.scaling.tolerance", "scaling.tolerance"
    ),
    Invalid(
        "fallback-replicas-missing",
        {"scaling": {"fallback": {"whenMetricsUnavailable": "Replicas"}}},
        "scaling.fallback.replicas is required",
        "scaling.fallback.replicas is required",
    ),
    Invalid(
        "negative-rpm",
        {"rateLimits": {"tiers": [{"name": "free", "requestsPerMinute": -5}]}},
        "spec.rateLimits.tiers[0].requestsPerMinute",
        "rateLimits.tiers.0.requestsPerMinute",
    ),
    Invalid(
        "duplicate-tier",
        {"rateLimits": {"tiers": [{"name": "free"}, {"name": "free"}]}},
        "spec.rateLimits.tiers[1]: Duplicate value",
        "rateLimits.tiers names must be unique",
    ),
    Invalid(
        "unknown-default-tier",
        {"rateLimits": {"tiers": TIERS, "defaultTier": "silver"}},
        "spec.rateLimits.defaultTier",
        "defaultTier must name one of",
    ),
    Invalid(
        "schedule-unknown-tier",
        {
            "rateLimits": {
                "tiers": TIERS,
                "schedules": [
                    {"name": "peak", "start": "09:00", "end": "17:00", "multiplier": 0.5, "tiers": ["silver"]}
                ],
            }
        },
        "rateLimits.schedules[].tiers must name tiers",
        "are not in rateLimits.tiers",
    ),
    Invalid(
        "zero-multiplier",
        {"rateLimits": {"schedules": [{"name": "peak", "start": "09:00", "end": "17:00", "multiplier": 0}]}},
        "spec.rateLimits.schedules[0].multiplier",
        "rateLimits.schedules.0.multiplier",
    ),
    Invalid(
        "redis-without-url",
        {"rateLimits": {"store": {"type": "Redis"}}},
        "rateLimits.store.url is required",
        "rateLimits.store.url is required",
    ),
    Invalid(
        "restore-above-saturation",
        {"rateLimits": {"adaptiveShedding": {"saturationThreshold": 0.8, "restoreThreshold": 0.9}}},
        "restoreThreshold must not exceed saturationThreshold",
        "restoreThreshold must not exceed",
    ),
    Invalid(
        "error-rate-above-one",
        {"failover": {"errorRateThreshold": 1.5}},
        "spec.failover.errorRateThreshold",
        "failover.errorRateThreshold",
    ),
    Invalid(
        "cooldown-above-max",
        {"failover": {"cooldownSeconds": 600, "maxCooldownSeconds": 60}},
        "maxCooldownSeconds must be at least",
        "maxCooldownSeconds must be at least",
    ),
    Invalid(
        "unknown-lb", {"loadBalancing": "Random"}, "spec.loadBalancing: Unsupported value", "loadBalancing"
    ),
    Invalid(
        "interval-too-short",
        {"reconcileIntervalSeconds": 1},
        "spec.reconcileIntervalSeconds",
        "reconcileIntervalSeconds",
    ),
    Invalid("negative-cache", {"cache": {"maxBytes": -1}}, "spec.cache.maxBytes", "cache.maxBytes"),
    Invalid(
        "access-log-sample-zero",
        {"accessLog": {"enabled": True, "sampleRate": 0}},
        "spec.accessLog.sampleRate",
        "accessLog.sampleRate",
    ),
    Invalid(
        "access-log-sample-above-one",
        {"accessLog": {"sampleRate": 1.5}},
        "spec.accessLog.sampleRate",
        "accessLog.sampleRate",
    ),
]


def invalid_route(case: Invalid) -> dict[str, Any]:
    obj = route(name=case.id, **case.spec)
    # window(minReplicas=None) means "leave it out"
    for sched in obj["spec"].get("scaling", {}).get("schedules", []):
        for key in [k for k, v in sched.items() if v is None]:
            del sched[key]
    return obj
