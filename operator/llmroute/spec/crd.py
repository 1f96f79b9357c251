"""The LLMRoute CustomResourceDefinition, generated from the pydantic models (as KEDA generates its CRDs
from its Go types). ``hack/generate.py`` writes it to ``crds/`` and every copy; tests keep them equal.

:func:`structural` turns a model's JSON schema into a Kubernetes structural schema: ``$ref`` inlined,
``Optional`` (``anyOf [X, null]``) reduced to ``X``, ``gt``/``lt`` as OpenAPI v3.0 exclusive bounds,
defaults written the way the apiserver applies them (:func:`expand` is its nested defaulting, so a default
keeps only what nested defaults do not fill in: ``default: {}`` for a section left at its defaults),
``json_schema_extra`` passed through (list types, CEL rules from each model's ``cel_rules``, formats),
``x-kubernetes-preserve-unknown-fields`` where a value has no schema. Descriptions are the fields'
``Field(description=...)`` (pydantic leaves a field's description out when it equals its model's docstring,
so that is used then); list items carry none. Anything it cannot express raises ``ValueError`` naming the
path, rather than generating a looser schema.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from llmroute import GROUP, KIND, PLURAL, VERSION
from llmroute.spec.route import LLMRouteSpec
from llmroute.spec.status import LLMRouteStatus

Schema = dict[str, Any]

# output key order (readability only: the apiserver does not care)
ORDER = (
    "type",
    "format",
    "description",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
    "required",
    "x-kubernetes-validations",
    "properties",
    "additionalProperties",
    "items",
)
COPIED = {"format", "description", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern"}
COPIED |= {"minItems", "maxItems", "required"} | {k for k in ORDER if k.startswith("x-kubernetes-")}
IGNORED = {"title", "default", "const", "exclusiveMinimum", "exclusiveMaximum"}
IGNORED |= {"properties", "items", "additionalProperties", "type"}


def _column(name: str, kind: str, path: str, description: str = "", priority: int = 0) -> Schema:
    """One ``additionalPrinterColumns`` entry (``kubectl get``); priority 1 shows only with ``-o wide``."""
    column: Schema = {"name": name, "type": kind, "jsonPath": path}
    if description:
        column["description"] = description
    if priority:
        column["priority"] = priority
    return column


PRINTER_COLUMNS = [
    _column("Desired", "integer", ".status.replicas.desired", "Replicas llmroute wants"),
    _column("Current", "integer", ".status.replicas.current", "Replicas the Deployment has"),
    _column("Load", "number", ".status.load.perReplica", "Load per replica in the scaling metric's unit"),
    _column("RPS", "number", ".status.load.requestsPerSecond", priority=1),
    _column("Active", "integer", ".status.activeGroup", "Active upstream group (0 = primary)"),
    _column("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
    _column("Age", "date", ".metadata.creationTimestamp"),
]
DESCRIPTION = "An OpenAI-compatible LLM gateway whose replicas, rate limits and failover llmroute reconciles."
SPEC_DESCRIPTION = (
    "The desired state: the proxy workload, its upstreams, and how llmroute scales, rate-limits and fails "
    "over."
)
STATUS_DESCRIPTION = "What the operator observed, decided and why (written by the operator only)."


class _WithFactoryDefaults(GenerateJsonSchema):
    """Pydantic's JSON schema, with the defaults of ``default_factory`` fields too."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            return factory()  # type: ignore[call-arg]
        return super().get_default_value(schema)


def structural(model: type[BaseModel], *, description: str, defaults: bool = True) -> Schema:
    """The structural schema of ``model`` (camelCase names), with ``description`` on its root.

    ``defaults=False`` leaves every default out (for the status, which the operator writes whole).
    Raises ``ValueError`` for a type the structural schema cannot express (e.g. a union of two types).
    """
    raw: JsonSchemaValue = model.model_json_schema(by_alias=True, schema_generator=_WithFactoryDefaults)
    defs = raw.pop("$defs", {})
    raw = {**raw, "description": description}
    return _convert(raw, defs, path=model.__name__, defaults=defaults)


def expand(value: Any, schema: Schema) -> Any:
    """``value`` as the apiserver stores it: absent properties with a default filled in, recursively,
    inside the defaults too (apiextensions-apiserver ``structuraldefaulting.Default``)."""
    value = copy.deepcopy(value)
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = expand(value[name], sub)
    elif isinstance(value, list) and "items" in schema:
        value = [expand(v, schema["items"]) for v in value]
    return value


def _resolve(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    """Inline ``$ref`` (the referring field's keys win) and reduce ``anyOf``/``allOf`` of one schema (plus
    ``null``) to that schema."""
    while True:
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        elif "anyOf" in node or "allOf" in node:
            key = "anyOf" if "anyOf" in node else "allOf"
            arms = [a for a in node[key] if a.get("type") != "null"]
            if len(arms) != 1:
                raise ValueError(f"{path}: a structural schema cannot express {key} of {len(arms)} schemas")
            node = {**arms[0], **{k: v for k, v in node.items() if k != key}}
        else:
            return node


def _convert(node: Schema, defs: dict[str, Schema], *, path: str, defaults: bool) -> Schema:
    node = _resolve(node, defs, path)
    unknown = set(node) - COPIED - IGNORED
    if unknown:
        raise ValueError(f"{path}: cannot express {sorted(unknown)} in a structural schema")
    out: Schema = {k: copy.deepcopy(v) for k, v in node.items() if k in COPIED}
    if "const" in node:
        out["enum"] = [node["const"]]
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if exclusive in node:  # JSON Schema 2020-12 number -> OpenAPI v3.0 flag
            out[bound], out[exclusive] = node[exclusive], True
        if bound in out:
            out[bound] = _number(out[bound])
    kind = node.get("type")
    if isinstance(kind, list):
        raise ValueError(f"{path}: a structural schema has one type, not {kind}")
    if kind is not None:
        out["type"] = kind
    props = node.get("properties")
    extra = node.get("additionalProperties")
    if props is not None:
        out["properties"] = {
            name: _convert(sub, defs, path=f"{path}.{name}", defaults=defaults) for name, sub in props.items()
        }
    if isinstance(extra, dict) and extra:
        out["additionalProperties"] = _convert(extra, defs, path=f"{path}{{}}", defaults=defaults)
    elif props is None and (kind in (None, "object")) and extra is not False:
        out["x-kubernetes-preserve-unknown-fields"] = True  # Any, dict[str, Any]: keep what is written
    if "items" in node:
        items = _convert(node["items"], defs, path=f"{path}[]", defaults=defaults)
        out["items"] = {k: v for k, v in items.items() if k != "description"}
    if "x-kubernetes-validations" in out:  # pydantic sorts keys; rule first reads better
        out["x-kubernetes-validations"] = [
            {k: r[k] for k in ("rule", "message", "fieldPath") if k in r}
            for r in out["x-kubernetes-validations"]
        ]
    if defaults and node.get("default") is not None:
        out["default"] = _minimal(_drop_none(node["default"]), out)
    return {k: out[k] for k in ORDER if k in out}


def _minimal(value: Any, schema: Schema) -> Any:
    """The smallest default that :func:`expand` turns back into ``value``, keys in the schema's order."""
    if isinstance(value, dict) and "properties" in schema:
        props = schema["properties"]
        return {
            k: _minimal(value[k], sub)
            for k, sub in props.items()
            if k in value and not ("default" in sub and expand(value[k], sub) == expand(sub["default"], sub))
        }
    if isinstance(value, list) and "items" in schema:
        return [_minimal(v, schema["items"]) for v in value]
    return value


def _drop_none(value: Any) -> Any:
    """A model default dumped with its unset optionals as ``None``: the apiserver wants them absent."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def openapi_schema() -> Schema:
    """The ``openAPIV3Schema`` of the LLMRoute kind."""
    return {
        "type": "object",
        "description": DESCRIPTION,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "Versioned schema of this representation of an object (llmroute.io/v1alpha1).",
            },
            "kind": {"type": "string", "description": "The REST resource this object represents (LLMRoute)."},
            "metadata": {"type": "object"},
            "spec": structural(LLMRouteSpec, description=SPEC_DESCRIPTION),
            "status": structural(LLMRouteStatus, description=STATUS_DESCRIPTION, defaults=False),
        },
    }


def crd() -> Schema:
    """The whole CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "llmroute", "app.kubernetes.io/part-of": "llmroute"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["llmr"],
                "categories": ["llmroute"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }
