"""Whose an existing child is: llmroute writes only into objects its route controls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from llmroute.cli.render import steady_config
from llmroute.k8s.failures import classify
from llmroute.k8s.ownership import NotOwnedError, check_owned
from llmroute.render.workload import build_children
from llmroute.spec.route import LLMRoute
from tests.cases import route

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
UID = "0a0a0a0a-1111-2222-3333-444444444444"


def _children() -> list[dict[str, Any]]:
    obj = route(name="chat")
    obj["metadata"].update(namespace="ns", uid=UID)
    parsed = LLMRoute.from_object(obj)
    return build_children(parsed, steady_config(parsed, 1, NOW), 1)


def _ref(kind: str, name: str, uid: str, controller: bool = True) -> client.V1OwnerReference:
    return client.V1OwnerReference(api_version="x/v1", kind=kind, name=name, uid=uid, controller=controller)


@pytest.mark.parametrize("child", _children(), ids=lambda c: f"{c['kind']}-{c['metadata']['name']}")
def test_every_child_is_written_only_when_the_route_controls_it(child: dict[str, Any]) -> None:
    kind, name = child["kind"], child["metadata"]["name"]
    check_owned(kind, child, client.V1ObjectMeta(name=name, owner_references=[_ref("LLMRoute", "chat", UID)]))
    check_owned(kind, child, child["metadata"])  # the wire form too
    for refs in (None, [_ref("LLMRoute", "chat", UID, controller=False)], [_ref("Deployment", "x", "other")]):
        with pytest.raises(NotOwnedError) as info:
            check_owned(kind, child, client.V1ObjectMeta(name=name, owner_references=refs))
        assert f"{kind} {name} exists and is" in str(info.value)
        assert "not LLMRoute chat" in str(info.value)
        failure = classify(info.value)
        assert (failure.reason, failure.transient) == ("NotOwned", False)


def test_a_users_object_is_named_with_its_controller() -> None:
    child = _children()[0]
    with pytest.raises(NotOwnedError, match="controlled by HelmRelease/web, not LLMRoute chat"):
        check_owned(
            "ConfigMap",
            child,
            {"ownerReferences": [{"kind": "HelmRelease", "name": "web", "uid": "u", "controller": True}]},
        )
    with pytest.raises(NotOwnedError, match="not controlled by any object"):
        check_owned("ConfigMap", child, {})


def test_a_deleted_route_of_the_same_name_is_waited_for() -> None:
    child = _children()[0]
    with pytest.raises(NotOwnedError) as info:
        check_owned(
            "ConfigMap", child, client.V1ObjectMeta(owner_references=[_ref("LLMRoute", "chat", "old")])
        )
    assert info.value.transient and "still owned by the deleted LLMRoute chat" in str(info.value)
    assert classify(info.value).transient


def test_an_object_rendered_offline_is_not_checked() -> None:
    parsed = LLMRoute.from_object(route(name="chat"))
    for child in build_children(parsed, steady_config(parsed, 1, NOW), 1):
        check_owned(child["kind"], child, client.V1ObjectMeta())
