"""Flatten pydantic models and a CRD's structural schema into the same per-path facts to compare them.

Each path (``.proxy.minReplicas``, ``.upstreams[].url``, map values as ``{}``) maps to its type, format,
bounds, enum, pattern, lengths, list type and keys, whether it is required, its description, the CEL rules on
it and its *effective* default (after the apiserver's nested defaulting, against the model's default in wire
form).

The model side reads the models' own field declarations (annotations and ``annotated_types`` metadata),
not their JSON schema, so it does not share code with the CRD generator it checks.
"""

from __future__ import annotations

import copy
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

Facts = dict[str, Any]
SCALARS = {int: "integer", float: "number", str: "string", bool: "boolean"}
CRD_KEYS = (
    "format",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
)


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """What the apiserver stores for ``value``: missing properties with a default filled in, recursively."""
    value = copy.deepcopy(value)
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        for name, sub in props.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(value[name], sub)
    elif isinstance(value, list) and "items" in schema:
        value = [apply_defaults(v, schema["items"]) for v in value]
    return value


def crd_facts(schema: dict[str, Any], path: str = "", *, required: bool = False) -> dict[str, Facts]:
    """Facts for every node of a structural schema, keyed by path (array items as ``path[]``)."""
    facts: Facts = {"type": schema.get("type"), "required": required}
    facts.update({k: schema[k] for k in CRD_KEYS if k in schema})
    for bound in ("minimum", "maximum"):
        if bound in schema:
            exclusive = bool(schema.get(f"exclusive{bound.capitalize()}", False))
            facts[bound] = (_num(schema[bound]), exclusive)
    if "description" in schema:
        facts["description"] = schema["description"]
    if "default" in schema:
        facts["default"] = apply_defaults(schema["default"], schema)
    facts["cel"] = [r["rule"] for r in schema.get("x-kubernetes-validations", [])]
    out = {path: facts}
    needed = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        out.update(crd_facts(sub, f"{path}.{name}", required=name in needed))
    if "items" in schema:
        out.update(crd_facts(schema["items"], f"{path}[]"))
    if isinstance(schema.get("additionalProperties"), dict):
        out.update(crd_facts(schema["additionalProperties"], f"{path}{{}}"))
    return out


def model_facts(
    model: type[BaseModel], path: str = "", *, defaults: bool = True, description: str | None = None
) -> dict[str, Facts]:
    """Facts for ``model`` and every field below it, as the models declare them."""
    out: dict[str, Facts] = {}
    _walk(model, [], {}, path, out, required=False, default=PydanticUndefined, defaults=defaults)
    if description is not None:
        out[path]["description"] = description
    return out


def _walk(
    tp: Any,
    meta: list[Any],
    extra: dict[str, Any],
    path: str,
    out: dict[str, Facts],
    *,
    required: bool,
    default: Any,
    defaults: bool,
) -> None:
    tp, meta, extra = _unwrap(tp, list(meta), dict(extra))
    facts: Facts = {"required": required, "cel": []}
    origin = get_origin(tp)
    if origin is list:
        facts["type"] = "array"
    elif origin is dict:
        facts["type"] = "object"
    elif origin is Literal:
        values = list(get_args(tp))
        facts["type"] = SCALARS[type(values[0])]
        facts["enum"] = values
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        facts["type"] = "object"
        facts["cel"] = [r.rule for r in getattr(tp, "cel_rules", ())]
    elif tp is Any:
        facts["type"] = None
        facts["x-kubernetes-preserve-unknown-fields"] = True
    else:
        facts["type"] = SCALARS[tp]
    facts.update(_constraints(meta, array=origin is list))
    facts.update({k: v for k, v in extra.items() if k in CRD_KEYS or k == "description"})
    if defaults and default is not PydanticUndefined and default is not None:
        facts["default"] = to_jsonable_python(default, by_alias=True, exclude_none=True)
    out[path] = facts
    if origin in (list, dict):
        inner, suffix = (get_args(tp)[0], "[]") if origin is list else (get_args(tp)[1], "{}")
        _walk(
            inner,
            [],
            {},
            f"{path}{suffix}",
            out,
            required=False,
            default=PydanticUndefined,
            defaults=defaults,
        )
    elif facts["type"] == "object":
        for name, field in tp.model_fields.items():
            field_extra = dict(field.json_schema_extra) if isinstance(field.json_schema_extra, dict) else {}
            if field.description:
                field_extra["description"] = field.description
            _walk(
                field.annotation,
                list(field.metadata),
                field_extra,
                f"{path}.{field.alias or name}",
                out,
                required=field.is_required(),
                default=field.get_default(call_default_factory=True),
                defaults=defaults,
            )


def _unwrap(tp: Any, meta: list[Any], extra: dict[str, Any]) -> tuple[Any, list[Any], dict[str, Any]]:
    """Strip ``Optional`` and ``Annotated``, collecting the constraints and schema extras they carry."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp, *marks = get_args(tp)
            for mark in marks:
                if isinstance(mark, FieldInfo):
                    meta.extend(mark.metadata)
                    if isinstance(mark.json_schema_extra, dict):
                        extra = {**mark.json_schema_extra, **extra}
                    if mark.description and "description" not in extra:
                        extra["description"] = mark.description
                else:
                    meta.append(mark)
        elif origin in (Union, types.UnionType):
            arms = [a for a in get_args(tp) if a is not type(None)]
            assert len(arms) == 1, f"only Optional unions are supported: {tp}"
            tp = arms[0]
        else:
            return tp, meta, extra


def _constraints(meta: list[Any], *, array: bool) -> Facts:
    facts: Facts = {}
    for m in meta:
        if isinstance(m, at.Ge):
            facts["minimum"] = (_num(m.ge), False)
        elif isinstance(m, at.Gt):
            facts["minimum"] = (_num(m.gt), True)
        elif isinstance(m, at.Le):
            facts["maximum"] = (_num(m.le), False)
        elif isinstance(m, at.Lt):
            facts["maximum"] = (_num(m.lt), True)
        elif isinstance(m, at.MinLen):
            facts["minItems" if array else "minLength"] = m.min_length
        elif isinstance(m, at.MaxLen):
            facts["maxItems" if array else "maxLength"] = m.max_length
        elif getattr(m, "pattern", None) is not None:
            facts["pattern"] = m.pattern
    return facts


def _num(value: Any) -> Any:
    """1e9 and 1000000000 are the same bound."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def differences(left: dict[str, Facts], right: dict[str, Facts]) -> list[str]:
    """One line per path and fact where ``left`` and ``right`` disagree (absent on one side included)."""
    lines = []
    for path in sorted(set(left) | set(right)):
        if path not in left or path not in right:
            lines.append(f"{path or '<root>'}: only in {'right' if path not in left else 'left'}")
            continue
        a, b = left[path], right[path]
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                lines.append(f"{path or '<root>'}: {key} {a.get(key)!r} != {b.get(key)!r}")
    return lines
