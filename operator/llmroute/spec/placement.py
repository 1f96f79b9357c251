"""Where and how the proxy pods run: the Kubernetes pod fields a cluster's policies ask for, in the
Kubernetes shapes (``core/v1`` Toleration, Affinity, TopologySpreadConstraint, EnvVar, LocalObjectReference;
``policy/v1`` PodDisruptionBudget's ``minAvailable``/``maxUnavailable``), typed field by field so the CRD
schema validates them. Every list and map is bounded (``maxItems``, ``maxProperties``, ``maxLength``) so the
schema and its CEL rules stay cheap for the apiserver. No field here is open-ended, so none preserves unknown
fields; int-or-string values are ``x-kubernetes-int-or-string``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from llmroute.spec.base import LIST_ATOMIC, CelRule, Model, Name, list_map

# a label or annotation key, a label value: lengths as Kubernetes bounds them (validated there too)
Key = Annotated[str, Field(min_length=1, max_length=317)]
Value = Annotated[str, Field(max_length=63)]
Values = Annotated[
    list[Annotated[str, Field(max_length=253)]], Field(max_length=64, json_schema_extra=LIST_ATOMIC)
]
SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
IntOrString = Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})]
INT_OR_PERCENT = "(type(self) == int ? self >= 0 : self.matches('^[0-9]+%$'))"


class Toleration(Model):
    """A taint the proxy pods tolerate (``core/v1`` Toleration)."""

    cel_rules = (
        CelRule(
            "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
            "a toleration with operator Exists has no value",
        ),
    )

    key: str | None = Field(None, max_length=317, description="Taint key; empty with Exists: every taint.")
    operator: Literal["Exists", "Equal"] | None = Field(None, description="Exists or Equal (default Equal).")
    value: str | None = Field(None, max_length=63, description="Taint value to match with operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to match; empty: all effects."
    )
    toleration_seconds: int | None = Field(
        None, ge=0, le=31536000, description="With NoExecute: seconds the pod stays bound after the taint."
    )

    @model_validator(mode="after")
    def _check(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("a toleration with operator Exists has no value")
        return self


class NodeSelectorRequirement(Model):
    """A node label (or field) test: ``key`` ``operator`` ``values``."""

    key: str = Field(min_length=1, max_length=317, description="The label key (or field name).")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] = Field(
        description="In, NotIn, Exists, DoesNotExist, Gt or Lt."
    )
    values: Values | None = Field(None, description="Values for In/NotIn; one integer for Gt/Lt.")


class NodeSelectorTerm(Model):
    """Node label and field tests that must all hold (ANDed)."""

    match_expressions: (
        Annotated[list[NodeSelectorRequirement], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None
    ) = Field(None, description="Tests on node labels.")
    match_fields: (
        Annotated[list[NodeSelectorRequirement], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None
    ) = Field(None, description="Tests on node fields.")


Terms = Annotated[list[NodeSelectorTerm], Field(min_length=1, max_length=32, json_schema_extra=LIST_ATOMIC)]


class NodeSelector(Model):
    """Terms of which at least one must hold (ORed)."""

    node_selector_terms: Terms = Field(description="The terms, ORed.")


class PreferredSchedulingTerm(Model):
    """A node preference with its weight."""

    weight: int = Field(ge=1, le=100, description="Weight 1-100 added for nodes matching preference.")
    preference: NodeSelectorTerm = Field(description="The node tests.")


class NodeAffinity(Model):
    """Which nodes the proxy pods must or should run on."""

    required_during_scheduling_ignored_during_execution: NodeSelector | None = Field(
        None, description="Nodes the pods must run on."
    )
    preferred_during_scheduling_ignored_during_execution: (
        Annotated[list[PreferredSchedulingTerm], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None
    ) = Field(None, description="Nodes the pods should run on, by weight.")


class LabelSelectorRequirement(Model):
    """A label test: ``key`` ``operator`` ``values``."""

    key: str = Field(min_length=1, max_length=317, description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: Values | None = Field(None, description="Values for In/NotIn.")


class LabelSelector(Model):
    """A label query (``meta/v1`` LabelSelector): matchLabels and matchExpressions, ANDed."""

    match_labels: Annotated[dict[str, Value], Field(max_length=32)] | None = Field(
        None, description="Labels that must equal these values."
    )
    match_expressions: (
        Annotated[list[LabelSelectorRequirement], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None
    ) = Field(None, description="Label tests.")


LabelKeys = Annotated[
    list[Annotated[str, Field(max_length=317)]], Field(max_length=16, json_schema_extra=LIST_ATOMIC)
]


class PodAffinityTerm(Model):
    """Pods (by label, in namespaces) that must or must not share a topology domain with the proxy pods."""

    label_selector: LabelSelector | None = Field(None, description="The pods this term is about.")
    namespace_selector: LabelSelector | None = Field(None, description="Namespaces the pods are in.")
    namespaces: Annotated[list[Name], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = Field(
        None, description="Namespaces the pods are in (default: the route's)."
    )
    topology_key: str = Field(
        min_length=1, max_length=317, description="Node label naming the domain, e.g. kubernetes.io/hostname."
    )
    match_label_keys: LabelKeys | None = Field(None, description="Pod label keys whose values must match.")
    mismatch_label_keys: LabelKeys | None = Field(
        None, description="Pod label keys whose values must differ."
    )


class WeightedPodAffinityTerm(Model):
    """A pod (anti-)affinity preference with its weight."""

    weight: int = Field(ge=1, le=100, description="Weight 1-100 added where the term holds.")
    pod_affinity_term: PodAffinityTerm = Field(description="The term.")


RequiredTerms = Annotated[list[PodAffinityTerm], Field(max_length=16, json_schema_extra=LIST_ATOMIC)]
PreferredTerms = Annotated[list[WeightedPodAffinityTerm], Field(max_length=16, json_schema_extra=LIST_ATOMIC)]


class PodAffinity(Model):
    """Pod affinity or anti-affinity rules."""

    required_during_scheduling_ignored_during_execution: RequiredTerms | None = Field(
        None, description="Terms that must hold."
    )
    preferred_during_scheduling_ignored_during_execution: PreferredTerms | None = Field(
        None, description="Terms that should hold, by weight."
    )


class Affinity(Model):
    """Scheduling constraints of the proxy pods (``core/v1`` Affinity)."""

    node_affinity: NodeAffinity | None = Field(None, description="Node affinity.")
    pod_affinity: PodAffinity | None = Field(None, description="Run near these pods.")
    pod_anti_affinity: PodAffinity | None = Field(None, description="Run away from these pods.")


class TopologySpreadConstraint(Model):
    """How the proxy pods spread over a topology (``core/v1`` TopologySpreadConstraint)."""

    max_skew: int = Field(ge=1, le=1000, description="Most the pod count may differ between two domains.")
    topology_key: str = Field(
        min_length=1,
        max_length=317,
        description="Node label naming the domain, e.g. topology.kubernetes.io/zone.",
    )
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = Field(
        description="DoNotSchedule (a hard rule) or ScheduleAnyway (a preference)."
    )
    label_selector: LabelSelector | None = Field(
        None, description="The pods counted. Unset: this route's proxy pods."
    )
    min_domains: int | None = Field(
        None, ge=1, le=1000, description="Fewest eligible domains (DoNotSchedule)."
    )
    node_affinity_policy: Literal["Honor", "Ignore"] | None = Field(
        None, description="Whether the pod's node affinity limits the domains counted."
    )
    node_taints_policy: Literal["Honor", "Ignore"] | None = Field(
        None, description="Whether node taints limit the domains counted."
    )
    match_label_keys: LabelKeys | None = Field(
        None, description="Pod label keys whose values select the pods counted (e.g. pod-template-hash)."
    )


class ObjectKeyRef(Model):
    """A key of a ConfigMap or Secret in the route's namespace."""

    name: Name = Field(description="Name of the ConfigMap or Secret.")
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="The key.")
    optional: bool | None = Field(None, description="Whether the key may be missing.")


class FieldRef(Model):
    """A field of the pod (downward API), e.g. metadata.name or status.podIP."""

    api_version: str | None = Field(None, max_length=64, description="Schema version of fieldPath (v1).")
    field_path: str = Field(
        min_length=1, max_length=256, description="Path of the field, e.g. metadata.name."
    )


class ResourceFieldRef(Model):
    """A resource request or limit of the container, e.g. limits.memory."""

    container_name: str | None = Field(None, max_length=63, description="Container name (default: proxy).")
    resource: str = Field(min_length=1, max_length=64, description="limits.cpu, requests.memory, ...")
    divisor: IntOrString | None = Field(None, description="Unit of the exposed value, e.g. 1Mi.")


class EnvVarSource(Model):
    """Where an environment variable's value comes from: exactly one source."""

    cel_rules = (
        CelRule(
            "[has(self.secretKeyRef), has(self.configMapKeyRef), has(self.fieldRef), "
            "has(self.resourceFieldRef)].filter(x, x).size() == 1",
            "valueFrom needs exactly one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef",
        ),
    )

    secret_key_ref: ObjectKeyRef | None = Field(None, description="A key of a Secret.")
    config_map_key_ref: ObjectKeyRef | None = Field(None, description="A key of a ConfigMap.")
    field_ref: FieldRef | None = Field(None, description="A field of the pod.")
    resource_field_ref: ResourceFieldRef | None = Field(None, description="A resource of the container.")

    @model_validator(mode="after")
    def _one(self) -> EnvVarSource:
        sources = (self.secret_key_ref, self.config_map_key_ref, self.field_ref, self.resource_field_ref)
        if sum(s is not None for s in sources) != 1:
            raise ValueError(
                "valueFrom needs exactly one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef"
            )
        return self


API_KEY_PREFIX = "LLMROUTE_API_KEY_"


class EnvVar(Model):
    """An environment variable of the proxy container (``core/v1`` EnvVar). An upstream API key
    (``LLMROUTE_API_KEY_*``) may only come from a Secret."""

    cel_rules = (
        CelRule("!(has(self.value) && has(self.valueFrom))", "set either value or valueFrom, not both"),
        CelRule(
            f"!self.name.startsWith('{API_KEY_PREFIX}') || "
            "(has(self.valueFrom) && has(self.valueFrom.secretKeyRef))",
            f"{API_KEY_PREFIX}* must come from a Secret (valueFrom.secretKeyRef), never inline",
            ".name",
        ),
    )

    name: str = Field(min_length=1, max_length=256, pattern=r"^[^=]+$", description="Variable name (no '=').")
    value: str | None = Field(None, max_length=32768, description="The value (not for secrets).")
    value_from: EnvVarSource | None = Field(None, description="Where the value comes from.")

    @model_validator(mode="after")
    def _check(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("set either value or valueFrom, not both")
        if self.name.startswith(API_KEY_PREFIX) and (
            self.value_from is None or self.value_from.secret_key_ref is None
        ):
            raise ValueError(
                f"{API_KEY_PREFIX}* must come from a Secret (valueFrom.secretKeyRef), never inline"
            )
        return self


class LocalObjectReference(Model):
    """A Secret in the route's namespace, by name."""

    name: Name = Field(description="Name of the Secret.")


class DisruptionBudget(Model):
    """The proxy's PodDisruptionBudget (``policy/v1``): at most one of minAvailable and maxUnavailable;
    neither: ``maxUnavailable: 1`` (a drain evicts one proxy at a time and is never blocked)."""

    cel_rules = (
        CelRule(
            "!(has(self.minAvailable) && has(self.maxUnavailable))",
            "set either minAvailable or maxUnavailable, not both",
        ),
        CelRule(
            f"!has(self.minAvailable) || {INT_OR_PERCENT.replace('self', 'self.minAvailable')}",
            "minAvailable is a count or a percentage such as 50%",
            ".minAvailable",
        ),
        CelRule(
            f"!has(self.maxUnavailable) || {INT_OR_PERCENT.replace('self', 'self.maxUnavailable')}",
            "maxUnavailable is a count or a percentage such as 25%",
            ".maxUnavailable",
        ),
    )

    min_available: IntOrString | None = Field(
        None, description="Pods that must stay available: a count or a percentage."
    )
    max_unavailable: IntOrString | None = Field(
        None, description="Pods that may be unavailable at once: a count or a percentage. Default: 1."
    )

    @model_validator(mode="after")
    def _check(self) -> DisruptionBudget:
        if self.min_available is not None and self.max_unavailable is not None:
            raise ValueError("set either minAvailable or maxUnavailable, not both")
        for name, value in (("minAvailable", self.min_available), ("maxUnavailable", self.max_unavailable)):
            if (isinstance(value, int) and value < 0) or (isinstance(value, str) and not _percent(value)):
                raise ValueError(f"{name} is a count or a percentage such as 50%")
        return self


def _percent(value: str) -> bool:
    return value.endswith("%") and value[:-1].isdigit()


class PodPlacement(Model):
    """Placement and policy fields of the proxy pods (the part of the proxy template that mirrors a pod
    spec); ``llmroute.render.placement`` writes them into the Deployment."""

    node_selector: Annotated[dict[str, Value], Field(max_length=32)] | None = Field(
        None, description="Node labels the proxy pods must run on (pod nodeSelector)."
    )
    tolerations: Annotated[list[Toleration], Field(max_length=32, json_schema_extra=LIST_ATOMIC)] | None = (
        Field(None, description="Taints the proxy pods tolerate.")
    )
    affinity: Affinity | None = Field(None, description="Node and pod (anti-)affinity of the proxy pods.")
    topology_spread_constraints: (
        Annotated[
            list[TopologySpreadConstraint],
            Field(max_length=8, json_schema_extra=list_map("topologyKey", "whenUnsatisfiable")),
        ]
        | None
    ) = Field(
        None,
        description="How the proxy pods spread over nodes and zones. Unset: maxSkew 1 over "
        "kubernetes.io/hostname and over topology.kubernetes.io/zone, ScheduleAnyway; []: no spreading. "
        "A constraint without labelSelector counts this route's proxy pods.",
    )
    priority_class_name: str | None = Field(
        None, max_length=253, pattern=SUBDOMAIN, description="PriorityClass of the proxy pods."
    )
    image_pull_secrets: (
        Annotated[list[LocalObjectReference], Field(max_length=16, json_schema_extra=list_map("name"))] | None
    ) = Field(None, description="Secrets to pull the proxy image with.")
    env: Annotated[list[EnvVar], Field(max_length=64, json_schema_extra=list_map("name"))] | None = Field(
        None,
        description="Extra environment variables of the proxy container (LLMROUTE_API_KEY_* only from a "
        "Secret).",
    )
    pod_annotations: (
        Annotated[dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=64)] | None
    ) = Field(None, description="Extra annotations of the proxy pods (they win over llmroute's own).")
    pod_disruption_budget: DisruptionBudget = Field(
        DisruptionBudget(),
        description="The proxy's PodDisruptionBudget. Default: maxUnavailable 1.",
    )
