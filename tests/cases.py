"""Shared table of invalid LLMRoutes: each must be rejected by the apiserver (CRD schema + CEL) and by the
pydantic models, with a message that names the field."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

UPSTREAM = {"name": "primary", "url": "http://127.0.0.1:9/v1", "model": "m"}


def with_identity(rate_limits: dict[str, Any] | None) -> dict[str, Any]:
    """``rate_limits`` with an identity that makes it valid on its own: tiers named by the trusted header
    when it has tiers, else an explicitly unauthenticated route (tests that are about identity say so)."""
    out = copy.deepcopy(rate_limits or {})
    if "identity" not in out:
        out["identity"] = {"type": "Header" if out.get("tiers") else "Unauthenticated"}
    return out


def route(name: str = "r", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"upstreams": [dict(UPSTREAM)]}
    body.update(copy.deepcopy(spec))
    if "rateLimits" not in spec or spec["rateLimits"] is not None:
        body["rateLimits"] = with_identity(spec.get("rateLimits"))
    else:
        del body["rateLimits"]  # rateLimits=None: leave it out altogether
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
    field: str | None = None  # the field both the apiserver and `llmroute validate` name (``spec.x[0].y``)
    name: str | None = None  # metadata.name, when the case is about it (else the id)


TIERS = [{"name": "gold", "priority": 10}, {"name": "free"}]
KEYS = {"name": "client-keys", "key": "gold"}


def _case(id_: str, spec: dict[str, Any], message: str, field_: str, **kw: Any) -> Invalid:
    """A case whose apiserver and model messages are the same rule text, on the same field."""
    return Invalid(id_, spec, message, message, field=field_, **kw)


# a route that says nothing of its clients, or says it in a way that lets anyone in or no one
SECURITY: list[Invalid] = [
    Invalid(
        "no-rate-limits",
        {"rateLimits": None},
        "spec.rateLimits: Required value",
        "spec.rateLimits",
        field="spec.rateLimits",
    ),
    _case(
        "silent-open-relay",
        {"rateLimits": {"identity": {"type": "ApiKey"}}},
        "a route without tiers identifies no client",
        "spec.rateLimits",
    ),
    _case(
        "api-key-tiers-without-keys",
        {"rateLimits": {"identity": {"type": "ApiKey"}, "tiers": [{"name": "free"}], "defaultTier": "free"}},
        "at least one tier needs apiKeysSecretRef",
        "spec.rateLimits",
    ),
    _case(
        "unreachable-tier",
        {
            "rateLimits": {
                "identity": {"type": "ApiKey"},
                "tiers": [{"name": "gold", "apiKeysSecretRef": KEYS}, {"name": "silver"}],
            }
        },
        "can only be the defaultTier",
        "spec.rateLimits",
    ),
    _case(
        "keys-ignored-by-header-identity",
        {
            "rateLimits": {
                "identity": {"type": "Header"},
                "tiers": [{"name": "gold", "apiKeysSecretRef": KEYS}],
            }
        },
        "apiKeysSecretRef is only read with identity type ApiKey",
        "spec.rateLimits",
    ),
    _case(
        "unauthenticated-tier-without-default",
        {"rateLimits": {"identity": {"type": "Unauthenticated"}, "tiers": [{"name": "all"}]}},
        "every caller is in the defaultTier",
        "spec.rateLimits",
    ),
    _case(
        "unauthenticated-unreachable-tier",
        {
            "rateLimits": {
                "identity": {"type": "Unauthenticated"},
                "defaultTier": "all",
                "tiers": [{"name": "all"}, {"name": "vip"}],
            }
        },
        "every caller is in the defaultTier",
        "spec.rateLimits",
    ),
    Invalid(
        "unknown-identity",
        {"rateLimits": {"identity": {"type": "Anyone"}}},
        "spec.rateLimits.identity.type: Unsupported value",
        "rateLimits.identity.type",
        field="spec.rateLimits.identity.type",
    ),
    Invalid(
        "unknown-cache-scope",
        {"cache": {"scope": "Everyone"}},
        "spec.cache.scope: Unsupported value",
        "cache.scope",
        field="spec.cache.scope",
    ),
    _case(
        "metrics-on-the-api-port",
        {"proxy": {"template": {"port": 9090}}},
        "metricsPort must differ",
        "spec.proxy.template",
    ),
    _case(
        "policy-for-a-deployment-llmroute-does-not-own",
        {"proxy": {"deploymentName": "mine", "networkPolicy": {"enabled": True}}},
        "proxy.networkPolicy is rendered only with a Deployment llmroute creates",
        "spec.proxy",
    ),
    Invalid("name-too-long", {}, "metadata.name must be a DNS-1035 label", "metadata.name", name="r" * 58),
    Invalid("name-with-a-dot", {}, "metadata.name must be a DNS-1035 label", "metadata.name", name="chat.v2"),
    Invalid(
        "name-starting-with-a-digit",
        {},
        "metadata.name must be a DNS-1035 label",
        "metadata.name",
        name="2chat",
    ),
]

# settings each in range that together (or at their edge) disable what they configure
DISABLING: list[Invalid] = [
    Invalid(
        "zero-requests-per-minute",
        {"rateLimits": {"tiers": [{"name": "free", "requestsPerMinute": 0}]}},
        "spec.rateLimits.tiers[0].requestsPerMinute",
        "rateLimits.tiers.0.requestsPerMinute",
        field="spec.rateLimits.tiers[0].requestsPerMinute",
    ),
    Invalid(
        "zero-client-tokens-per-minute",
        {"rateLimits": {"tiers": [{"name": "free", "perClient": {"tokensPerMinute": 0}}]}},
        "spec.rateLimits.tiers[0].perClient.tokensPerMinute",
        "rateLimits.tiers.0.perClient.tokensPerMinute",
        field="spec.rateLimits.tiers[0].perClient.tokensPerMinute",
    ),
    _case(
        "all-weights-zero",
        {"upstreams": [dict(UPSTREAM, weight=0)]},
        "every group needs a member with weight",
        "spec",
    ),
    _case(
        "fallback-group-weights-zero",
        {"upstreams": [dict(UPSTREAM), dict(UPSTREAM, name="backup", group=1, weight=0)]},
        "every group needs a member with weight",
        "spec",
    ),
    _case(
        "min-replicas-zero-on-proxy-metrics",
        {"proxy": {"minReplicas": 0}},
        "cannot come back from zero",
        "spec",
    ),
    _case(
        "schedule-min-above-max",
        {"scaling": {"schedules": [window(minReplicas=50)]}},
        "scaling.schedules[].minReplicas exceeds proxy.maxReplicas",
        "spec",
    ),
    _case(
        "history-longer-than-lookback",
        {"scaling": {"predictive": {"lookbackDays": 1, "minHistoryHours": 48}}},
        "minHistoryHours must not exceed lookbackDays x 24",
        "spec.scaling.predictive",
    ),
    _case(
        "entry-larger-than-cache",
        {"cache": {"maxBytes": 1024, "maxEntryBytes": 4096}},
        "maxEntryBytes must not exceed maxBytes",
        "spec.cache",
    ),
    _case(
        "enabled-cache-of-zero-bytes",
        {"cache": {"maxBytes": 0}},
        "an enabled cache needs maxBytes above 0",
        "spec.cache",
    ),
]

# routes at the edge of those rules that are fine (both the apiserver and the models accept them)
VALID_EDGES: dict[str, dict[str, Any]] = {
    "min-replicas-zero-on-a-custom-metric": {
        "proxy": {"minReplicas": 0},
        "scaling": {"metric": {"type": "Custom", "query": "sum(queue_depth)"}},
    },
    "one-zero-weight-beside-a-weighted-member": {
        "upstreams": [dict(UPSTREAM), dict(UPSTREAM, name="b", weight=0)]
    },
    "disabled-cache-of-zero-bytes": {"cache": {"enabled": False, "maxBytes": 0}},
    "unauthenticated-with-one-default-tier": {
        "rateLimits": {
            "identity": {"type": "Unauthenticated"},
            "defaultTier": "all",
            "tiers": [{"name": "all", "requestsPerMinute": 600}],
        },
    },
    "api-keys-with-a-keyless-default-tier": {
        "rateLimits": {
            "identity": {"type": "ApiKey"},
            "defaultTier": "free",
            "tiers": [{"name": "gold", "apiKeysSecretRef": KEYS}, {"name": "free"}],
        },
    },
    "predictive-off-with-a-long-history-need": {
        "scaling": {"predictive": {"enabled": False, "lookbackDays": 1, "minHistoryHours": 48}}
    },
    "name-of-57-characters": {},
    # a total below the default first-byte and idle timeouts: those never fire, the total bounds all
    "total-below-the-other-timeouts": {"proxy": {"timeouts": {"totalSeconds": 30}}},
    # a number without a fractional part is an integer to the apiserver's schema (but not to a CEL rule
    # that reads the field: maxReplicas 5.0 is refused with "expected int, got float64 evaluating rule")
    "integral-float-for-an-integer": {"reconcileIntervalSeconds": 30.0},
    # an @ after the host (path, query) is no credential
    "at-sign-in-url-paths": {
        "upstreams": [dict(UPSTREAM, url="https://api.example/v1/@org?ref=a@b")],
        "rateLimits": {"store": {"type": "Redis", "url": "redis://redis.example:6379/0"}},
        "prometheus": {"url": "https://prometheus.example/select/@tenant"},
    },
}

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
    # a credential in a URL would be stored in plain text in the route (and, but for the Prometheus URL,
    # in the proxies' ConfigMap), outside any Secret
    Invalid(
        "upstream-url-with-credentials",
        {"upstreams": [dict(UPSTREAM, url="https://sk-proj-abc123@api.example/v1")]},
        "upstreams[].url must not carry credentials",
        "upstreams[].url must not carry credentials",
    ),
    Invalid(
        "engine-metrics-url-with-credentials",
        {"upstreams": [dict(UPSTREAM, engine={"metricsUrl": "http://admin:hunter2@10.0.0.5:8000/metrics"})]},
        "upstreams[].engine.metricsUrl must not carry credentials",
        "upstreams[].engine.metricsUrl must not carry credentials",
    ),
    Invalid(
        "redis-url-with-password",
        {"rateLimits": {"store": {"type": "Redis", "url": "rediss://:hunter2@redis.example:6380/0"}}},
        "rateLimits.store.url must not carry credentials",
        "rateLimits.store.url must not carry credentials",
    ),
    Invalid(
        "prometheus-url-with-credentials",
        {"prometheus": {"url": "https://llmroute:hunter2@prometheus.example"}},
        "prometheus.url must not carry credentials",
        "prometheus.url must not carry credentials",
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
        "unknown-engine",
        {"upstreams": [dict(UPSTREAM, engine={"type": "Triton"})]},
        "spec.upstreams[0].engine.type: Unsupported value",
        "upstreams.0.engine.type",
    ),
    Invalid(
        "bad-engine-metrics-url",
        {"upstreams": [dict(UPSTREAM, engine={"metricsUrl": "unix:///run/vllm.sock"})]},
        "spec.upstreams[0].engine.metricsUrl",
        "upstreams.0.engine.metricsUrl",
    ),
    Invalid(
        "unknown-load-balancing",
        {"loadBalancing": "LeastLoaded"},
        "spec.loadBalancing: Unsupported value",
        "loadBalancing",
    ),
    Invalid(
        "scrape-timeout-above-interval",
        {"engineMetrics": {"scrapeIntervalSeconds": 1, "scrapeTimeoutSeconds": 2}},
        "engineMetrics.scrapeTimeoutSeconds must not exceed engineMetrics.scrapeIntervalSeconds",
        "engineMetrics.scrapeTimeoutSeconds must not exceed",
    ),
    Invalid(
        "scrape-interval-too-short",
        {"engineMetrics": {"scrapeIntervalSeconds": 0.01, "scrapeTimeoutSeconds": 0.005}},
        "spec.engineMetrics.scrapeIntervalSeconds",
        "engineMetrics.scrapeIntervalSeconds",
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
        "inline-api-key-env",
        {"proxy": {"template": {"env": [{"name": "LLMROUTE_API_KEY_OPENAI", "value": "sk-x"}]}}},
        "must come from a Secret",
        "must come from a Secret",
    ),
    Invalid(
        "env-two-sources",
        {
            "proxy": {
                "template": {
                    "env": [
                        {
                            "name": "X",
                            "valueFrom": {
                                "fieldRef": {"fieldPath": "metadata.name"},
                                "configMapKeyRef": {"name": "c", "key": "k"},
                            },
                        }
                    ]
                }
            }
        },
        "valueFrom needs exactly one of",
        "valueFrom needs exactly one of",
    ),
    Invalid(
        "pdb-both",
        {"proxy": {"template": {"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}}},
        "set either minAvailable or maxUnavailable",
        "set either minAvailable or maxUnavailable",
    ),
    Invalid(
        "pdb-not-a-percentage",
        {"proxy": {"template": {"podDisruptionBudget": {"maxUnavailable": "half"}}}},
        "maxUnavailable is a count or a percentage",
        "maxUnavailable is a count or a percentage",
    ),
    Invalid(
        "toleration-effect",
        {"proxy": {"template": {"tolerations": [{"key": "gpu", "effect": "Sometimes"}]}}},
        "spec.proxy.template.tolerations[0].effect: Unsupported value",
        "tolerations.0.effect",
    ),
    Invalid(
        "spread-without-key",
        {
            "proxy": {
                "template": {
                    "topologySpreadConstraints": [{"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]
                }
            }
        },
        "spec.proxy.template.topologySpreadConstraints[0].topologyKey: Required value",
        "topologySpreadConstraints.0.topologyKey",
    ),
    Invalid(
        "priority-class-name",
        {"proxy": {"template": {"priorityClassName": "Not_A_Name"}}},
        "spec.proxy.template.priorityClassName",
        "priorityClassName",
    ),
    *SECURITY,
    *DISABLING,
    Invalid(
        "prometheus-scrape-interval-zero",
        {"prometheus": {"scrapeIntervalSeconds": 0}},
        "spec.prometheus.scrapeIntervalSeconds",
        "prometheus.scrapeIntervalSeconds",
    ),
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
    # the schema's types: a string is not a number or a boolean (pydantic's lax mode would read it as one)
    Invalid(
        "string-for-an-integer",
        {"proxy": {"maxReplicas": "5"}},
        "spec.proxy.maxReplicas",
        "proxy.maxReplicas",
        field="spec.proxy.maxReplicas",
    ),
    Invalid(
        "string-for-a-number",
        {"scaling": {"tolerance": "0.2"}},
        "spec.scaling.tolerance",
        "scaling.tolerance",
        field="spec.scaling.tolerance",
    ),
    Invalid("string-for-a-boolean", {"paused": "true"}, "spec.paused", "paused", field="spec.paused"),
]


def invalid_route(case: Invalid) -> dict[str, Any]:
    obj = route(name=case.name or case.id, **case.spec)
    # window(minReplicas=None) means "leave it out"
    for sched in obj["spec"].get("scaling", {}).get("schedules", []):
        for key in [k for k, v in sched.items() if v is None]:
            del sched[key]
    return obj


def edge_route(case_id: str) -> dict[str, Any]:
    """The valid route of :data:`VALID_EDGES` ``case_id``."""
    name = "r" * 57 if case_id == "name-of-57-characters" else case_id
    return route(name=name, **VALID_EDGES[case_id])
