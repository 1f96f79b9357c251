"""The CRD and the pydantic models agree path by path (types, bounds, enums, patterns, lengths, defaults,
required, list keys, CEL rules, descriptions), the CRD is a structural schema, and the generator turns each
kind of model field into the schema the apiserver needs (checked on a small synthetic model set)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import Field

from llmroute import __version__
from llmroute.controller.settings import OperatorSettings, SettingsError
from llmroute.render.workload import build_deployment
from llmroute.spec import LLMRoute
from llmroute.spec.base import LIST_SET, CelRule, Model, Name, list_map
from llmroute.spec.crd import crd, structural
from llmroute.spec.route import LLMRouteSpec
from llmroute.spec.status import LLMRouteStatus
from llmroute.spec.upstream import DEFAULT_IMAGE
from tests.cases import route
from tests.unit.crd_facts import apply_defaults, crd_facts, differences, model_facts

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "llmroute.io_llmroutes.yaml"
NOT_STRUCTURAL = {"$ref", "$defs", "anyOf", "allOf", "oneOf", "not", "title", "const", "discriminator"}


def _schema(doc: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return _schema(yaml.safe_load(CRD_PATH.read_text()))


def test_spec_in_the_crd_is_the_models(schema: dict[str, Any]) -> None:
    spec = schema["properties"]["spec"]
    models = model_facts(LLMRouteSpec, ".spec", description=spec["description"])
    models[".spec"]["required"] = True
    assert differences(models, crd_facts(spec, ".spec", required=True)) == []


def test_status_in_the_crd_is_the_models_without_defaults(schema: dict[str, Any]) -> None:
    status = schema["properties"]["status"]
    models = model_facts(LLMRouteStatus, ".status", defaults=False, description=status["description"])
    assert differences(models, crd_facts(status, ".status")) == []


def test_every_field_is_described(schema: dict[str, Any]) -> None:
    paths = [
        path
        for part in ("spec", "status")
        for path, facts in crd_facts(schema["properties"][part], f".{part}").items()
        if not path.endswith(("[]", "{}")) and not facts.get("description")  # items and map values: none
    ]
    assert paths == []


def test_crd_is_structural(schema: dict[str, Any]) -> None:
    problems: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        problems.extend(f"{path}: {key}" for key in NOT_STRUCTURAL & set(node))
        if node.get("additionalProperties") is False:
            problems.append(f"{path}: additionalProperties false")
        open_or_int_or_string = ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")
        if "type" not in node and not any(node.get(k) for k in open_or_int_or_string):
            problems.append(f"{path}: no type")
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    walk(schema, "")
    assert problems == []


def test_file_defaults_a_minimal_route_like_the_models(schema: dict[str, Any]) -> None:
    obj = route("minimal")
    stored = apply_defaults(obj["spec"], schema["properties"]["spec"])
    wire = json.loads(json.dumps(LLMRoute.from_object(obj).spec.to_wire()))
    assert stored == wire


def test_the_proxy_image_is_the_operators_unless_the_route_names_one(
    schema: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No default is stored in the route (it would pin the proxies to the image of the day the route was
    created): the operator fills in its own proxy image, LLMROUTE_PROXY_IMAGE, this release's by default."""
    template = schema["properties"]["spec"]["properties"]["proxy"]["properties"]["template"]
    assert "default" not in template["properties"]["image"]
    assert DEFAULT_IMAGE.endswith(f":{__version__}")
    monkeypatch.delenv("LLMROUTE_PROXY_IMAGE", raising=False)
    assert OperatorSettings().proxy_image == DEFAULT_IMAGE
    monkeypatch.setenv("LLMROUTE_PROXY_IMAGE", "mirror.example/llmroute@sha256:" + "a" * 64)
    mirrored = OperatorSettings().proxy_image
    for body, image in (
        (route(), mirrored),
        (route(proxy={"template": {"port": 8080}}), mirrored),
        (route(proxy={"template": {"image": "own.example/proxy:1"}}), "own.example/proxy:1"),
    ):
        pod = build_deployment(LLMRoute.from_object(body), 1, mirrored)["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == image
    monkeypatch.setenv("LLMROUTE_PROXY_IMAGE", "")
    with pytest.raises(SettingsError, match="LLMROUTE_PROXY_IMAGE"):
        OperatorSettings()


def test_generated_crd_keeps_kind_names_columns_and_status_subresource() -> None:
    spec = crd()["spec"]
    assert spec["names"] == {
        "kind": "LLMRoute",
        "listKind": "LLMRouteList",
        "plural": "llmroutes",
        "singular": "llmroute",
        "shortNames": ["llmr"],
        "categories": ["llmroute"],
    }
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Desired",
        "Current",
        "Load",
        "RPS",
        "Active",
        "Ready",
        "Age",
    ]


# --- the generator on a small synthetic model set ---------------------------------------------------------


class Leaf(Model):
    """A docstring is for Python readers and never reaches the CRD."""

    cel_rules = (CelRule("self.low <= self.high", "low must not exceed high", ".low"),)

    low: int = Field(1, ge=0, description="Low end.")
    high: int = Field(10, ge=1, le=100, description="High end.")


class Item(Model):
    name: Name = Field(description="Key.")
    ratio: float = Field(gt=0, lt=1, description="Open interval.")


Flag = Literal["a", "b"]


def _flags() -> list[Flag]:
    return ["a"]


class Root(Model):
    leaf: Leaf = Field(Leaf(), description="Section at its defaults.")
    tuned: Leaf = Field(Leaf(low=5), description="Section with its own default.")
    items: list[Item] = Field(
        default_factory=list, max_length=4, json_schema_extra=list_map("name"), description="Keyed list."
    )
    tags: list[Flag] = Field(default_factory=_flags, json_schema_extra=LIST_SET, description="Set of flags.")
    mode: Literal["On"] = Field("On", description="One allowed value.")
    note: str | None = Field(None, max_length=8, description="Optional text.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free-form map.")
    raw: Any = Field(None, description="Anything at all.")


LEAF_PROPERTIES = {
    "low": {"type": "integer", "description": "Low end.", "default": 1, "minimum": 0},
    "high": {"type": "integer", "description": "High end.", "default": 10, "minimum": 1, "maximum": 100},
}
LEAF_RULES = [{"rule": "self.low <= self.high", "message": "low must not exceed high", "fieldPath": ".low"}]


def test_generator_writes_each_kind_of_field_as_the_apiserver_needs_it() -> None:
    out = structural(Root, description="Synthetic root.")
    assert out["type"] == "object" and out["description"] == "Synthetic root."
    props = out["properties"]
    assert props["leaf"] == {
        "type": "object",
        "description": "Section at its defaults.",
        "default": {},  # nested defaults fill in the rest
        "x-kubernetes-validations": LEAF_RULES,
        "properties": LEAF_PROPERTIES,
    }
    assert props["tuned"]["default"] == {"low": 5}  # only what the nested defaults would not give
    assert props["items"] == {
        "type": "array",
        "description": "Keyed list.",
        "default": [],
        "maxItems": 4,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "items": {
            "type": "object",
            "required": ["name", "ratio"],
            "properties": {
                "name": {
                    "type": "string",
                    "description": "Key.",
                    "minLength": 1,
                    "maxLength": 63,
                    "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                },
                "ratio": {
                    "type": "number",
                    "description": "Open interval.",
                    "minimum": 0,
                    "exclusiveMinimum": True,
                    "maximum": 1,
                    "exclusiveMaximum": True,
                },
            },
        },
    }
    assert props["tags"] == {
        "type": "array",
        "description": "Set of flags.",
        "default": ["a"],
        "x-kubernetes-list-type": "set",
        "items": {"type": "string", "enum": ["a", "b"]},
    }
    assert props["mode"] == {
        "type": "string",
        "description": "One allowed value.",
        "enum": ["On"],
        "default": "On",
    }
    assert props["note"] == {"type": "string", "description": "Optional text.", "maxLength": 8}
    assert props["labels"] == {
        "type": "object",
        "description": "Free-form map.",
        "default": {},
        "additionalProperties": {"type": "string"},
    }
    assert props["raw"] == {"description": "Anything at all.", "x-kubernetes-preserve-unknown-fields": True}


def test_generator_leaves_defaults_out_when_asked() -> None:
    out = structural(Root, description="d", defaults=False)
    assert [path for path, facts in crd_facts(out).items() if "default" in facts] == []
    assert out["properties"]["leaf"]["properties"] == {
        name: {k: v for k, v in prop.items() if k != "default"} for name, prop in LEAF_PROPERTIES.items()
    }


def test_agreement_check_holds_on_the_synthetic_set_and_catches_a_missing_bound() -> None:
    out = structural(Root, description="Synthetic root.")
    models = model_facts(Root, description="Synthetic root.")
    assert differences(models, crd_facts(out)) == []
    del out["properties"]["leaf"]["properties"]["high"]["maximum"]
    out["properties"]["items"]["items"]["properties"]["ratio"]["exclusiveMinimum"] = False
    out["properties"]["tuned"]["default"] = {}
    assert differences(models, crd_facts(out)) == [
        ".items[].ratio: minimum (0, True) != (0, False)",
        ".leaf.high: maximum (100, False) != None",
        ".tuned: default {'low': 5, 'high': 10} != {'low': 1, 'high': 10}",
    ]


class Either(Model):
    value: int | str = Field(0, description="Two types.")


def test_generator_refuses_what_a_structural_schema_cannot_say() -> None:
    with pytest.raises(ValueError, match=r"Either\.value: a structural schema cannot express anyOf of 2"):
        structural(Either, description="d")
