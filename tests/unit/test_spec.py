"""The pydantic models accept the examples and reject every invalid case with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from llmroute.spec import LLMRoute
from llmroute.spec.proxyconfig import ProxyConfig, RouteRef, UpstreamConfig
from tests.cases import INVALID, Invalid, invalid_route, route

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"minimal.yaml", "full.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        parsed = LLMRoute.from_object(doc)
        assert parsed.metadata.name == doc["metadata"]["name"]
        # round trip through the wire format is lossless
        assert LLMRoute.from_object({"metadata": doc["metadata"], "spec": parsed.spec.to_wire()}) == parsed


def test_the_charts_artifact_hub_examples_are_valid() -> None:
    chart = yaml.safe_load((ROOT / "helm" / "llmroute" / "Chart.yaml").read_text())
    examples = yaml.safe_load(chart["annotations"]["artifacthub.io/crdsExamples"])
    assert examples
    for doc in examples:
        assert LLMRoute.from_object(doc).metadata.name == doc["metadata"]["name"]


def test_minimal_route_gets_documented_defaults() -> None:
    spec = LLMRoute.from_object(route()).spec
    assert (spec.proxy.min_replicas, spec.proxy.max_replicas) == (1, 10)
    assert spec.scaling.metric.type == "RequestsPerSecond"
    assert spec.scaling.behavior.scale_down.stabilization_window_seconds == 300
    assert spec.scaling.predictive.mode == "Active"
    assert spec.rate_limits.store.type == "Local"
    assert spec.load_balancing == "LeastConnections"


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_routes_are_rejected_naming_the_field(case: Invalid) -> None:
    with pytest.raises(ValidationError) as info:
        LLMRoute.from_object(invalid_route(case))
    text = str(info.value).replace("\n", " ")
    # pydantic prints locations dot-separated; match the field path or the rule's message
    assert case.model_message in text or case.model_message in _locations(info.value), text


def _locations(exc: ValidationError) -> str:
    return " ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())


def test_there_are_at_least_twenty_invalid_cases() -> None:
    assert len(INVALID) >= 20
    assert len({c.id for c in INVALID}) == len(INVALID)


def test_proxy_config_hash_changes_with_content_only() -> None:
    base = ProxyConfig(
        route=RouteRef(namespace="ns", name="r"),
        upstreams=[UpstreamConfig(name="a", url="http://127.0.0.1:1", model="m")],
    )
    again = ProxyConfig.loads(base.dumps())
    assert again.hash == base.content_hash() != ""
    changed = base.model_copy(update={"active_group": 1})
    assert changed.content_hash() != base.content_hash()
