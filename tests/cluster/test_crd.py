"""The CRD on a real kube-apiserver: installs, accepts the examples (with the same defaults the pydantic
models apply), shows its printer columns, and rejects every invalid case with a message naming the field."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION
from llmroute.spec import LLMRoute, Scaling
from llmroute.spec.route import LLMRouteSpec
from llmroute_dev.binaries import ensure
from llmroute_dev.controlplane import ControlPlane
from tests.cases import INVALID, Invalid, invalid_route, route
from tests.kube import create_route, eventually, raw_get

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
pytestmark = pytest.mark.usefixtures("crd_installed")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_accepted_with_the_models_defaults(
    api_client: client.ApiClient, namespace: str, path: Path
) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        stored = create_route(api_client, namespace, doc)
        # the apiserver applied the CRD's defaults; the models apply theirs: they must agree
        assert LLMRoute.from_object(stored).spec == LLMRoute.from_object(doc).spec
        assert _normalise(stored["spec"]) == _normalise(_wire(LLMRoute.from_object(doc)))


def _wire(obj: LLMRoute) -> dict[str, Any]:
    wire: dict[str, Any] = json.loads(json.dumps(obj.spec.to_wire()))
    return wire


def test_minimal_route_is_defaulted_like_the_models(api_client: client.ApiClient, namespace: str) -> None:
    stored = create_route(api_client, namespace, route("minimal"))
    assert _normalise(stored["spec"]) == _normalise(_wire(LLMRoute.from_object(route("minimal"))))


def _normalise(value: Any) -> Any:
    """JSON numbers compare by value (the apiserver may print 5 where the model prints 5.0)."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_invalid_route_is_rejected_naming_the_field(
    api_client: client.ApiClient, namespace: str, case: Invalid
) -> None:
    with pytest.raises(client.ApiException) as info:
        create_route(api_client, namespace, invalid_route(case))
    assert info.value.status == 422, info.value.body
    message = json.loads(info.value.body)["message"]
    assert case.api_message in message, message


def test_inline_api_key_is_never_stored(api_client: client.ApiClient, namespace: str) -> None:
    obj = route("leak")
    obj["spec"]["upstreams"][0]["apiKey"] = "sk-live-123"
    with pytest.raises(client.ApiException) as info:
        create_route(api_client, namespace, obj)
    assert "sk-live-123" not in json.loads(info.value.body)["message"]
    custom = client.CustomObjectsApi(api_client)
    assert custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"] == []


def test_table_output_shows_printer_columns(api_client: client.ApiClient, namespace: str) -> None:
    create_route(api_client, namespace, route("table"))
    custom = client.CustomObjectsApi(api_client)
    status = {
        "replicas": {"desired": 4, "current": 3},
        "load": {"time": "2026-01-01T00:00:00Z", "perReplica": 31.5, "requestsPerSecond": 94.5},
        "activeGroup": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Reconciled",
                "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    }
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "table", {"status": status}
    )
    table = raw_get(
        api_client,
        f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}",
        accept="application/json;as=Table;v=v1;g=meta.k8s.io",
    )
    shown = [i for i, c in enumerate(table["columnDefinitions"]) if c["priority"] == 0]
    columns = [table["columnDefinitions"][i]["name"] for i in shown]
    assert columns == ["Name", "Desired", "Current", "Load", "Active", "Ready", "Age"]
    cells = table["rows"][0]["cells"]
    assert [cells[i] for i in shown[:6]] == ["table", 4, 3, 31.5, 1, "True"]


def test_short_name_and_category(api_client: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    crd = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert crd.spec.names.short_names == ["llmr"]
    assert crd.spec.versions[0].subresources.status is not None


def test_kubectl_explain_shows_the_models_descriptions(control_plane: ControlPlane) -> None:
    kubectl = ensure(("kubectl",))["kubectl"]
    described = LLMRouteSpec.model_fields["scaling"].description
    assert described

    def explain() -> str:
        out = subprocess.run(
            [str(kubectl), "--kubeconfig", str(control_plane.kubeconfig), "explain", "llmroute.spec.scaling"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        text = " ".join(out.stdout.split())  # kubectl wraps long lines
        return text if out.returncode == 0 and described in text else ""

    # the apiserver publishes a changed CRD's OpenAPI a moment after it is established
    text = eventually(explain, timeout=60, what="kubectl explain showing the CRD's descriptions")
    for name, field in Scaling.model_fields.items():
        assert field.alias and field.description
        assert f"{field.alias} <" in text, name
        assert " ".join(field.description.split()) in text, name
