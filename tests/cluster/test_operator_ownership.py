"""Names already taken. An object with a child's name (``<route>-proxy``, ``<route>-proxy-config``) that
the route does not control is a user's. The operator writes nothing into it — no pod template, data or
subjects overwritten, no replicas — says so on the route (``Ready=False``, reason ``NotOwned``, naming the
object), and once the object is gone creates its own without a restart. A Deployment two routes name
is scaled by one of them."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from llmroute import GROUP, PLURAL, VERSION
from llmroute.testing.load_emitter import LoadEmitter
from tests.cluster.conftest import StartOperator
from tests.cluster.operator_env import (
    condition,
    events,
    get_route,
    later_than,
    replicas,
    route_object,
    wait_reconciled,
)
from tests.kube import create_route, deployment, eventually

USER_SUBJECTS = [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]


def _deployment(api: client.ApiClient, ns: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        ns, deployment("chat-proxy", replicas=2, image="example.invalid/mine:1")
    )

    def seen() -> Any:
        current = apps.read_namespaced_deployment("chat-proxy", ns)
        return current.spec.replicas, current.spec.template.spec.containers[0].image

    return seen, lambda: apps.delete_namespaced_deployment("chat-proxy", ns)


def _configmap(api: client.ApiClient, ns: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    core = client.CoreV1Api(api)
    meta = client.V1ObjectMeta(name="chat-proxy-config")
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta, data={"mine": "1"}))
    return (
        lambda: core.read_namespaced_config_map("chat-proxy-config", ns).data,
        lambda: core.delete_namespaced_config_map("chat-proxy-config", ns),
    )


def _role_binding(api: client.ApiClient, ns: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    """A user's RoleBinding of the name, to a Role the operator could bind (it holds what it grants)."""
    rbac = client.RbacAuthorizationV1Api(api)
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}
    rbac.create_namespaced_role(ns, {"metadata": {"name": "readers"}, "rules": [rule]})
    binding = {
        "metadata": {"name": "chat-proxy"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "readers"},
        "subjects": USER_SUBJECTS,
    }
    rbac.create_namespaced_role_binding(ns, binding)
    return (
        lambda: api.sanitize_for_serialization(rbac.read_namespaced_role_binding("chat-proxy", ns).subjects),
        lambda: rbac.delete_namespaced_role_binding("chat-proxy", ns),
    )


CASES = {
    "Deployment chat-proxy": _deployment,
    "ConfigMap chat-proxy-config": _configmap,
    "RoleBinding chat-proxy": _role_binding,
}


@pytest.mark.parametrize("taken", sorted(CASES))
def test_a_users_object_with_a_childs_name_is_left_alone_and_reported(
    api_client: client.ApiClient,
    namespace: str,
    start_operator: StartOperator,
    emitter: LoadEmitter,
    taken: str,
) -> None:
    seen, delete = CASES[taken](api_client, namespace)
    before = seen()
    emitter.set(f"{namespace}/chat", rps=5)  # one replica's worth: a Deployment of 2 would be scaled down
    op = start_operator(namespace)
    create_route(api_client, namespace, route_object("chat"))

    def not_owned() -> dict[str, Any] | None:
        cond = condition(get_route(api_client, namespace, "chat"), "Ready")
        return cond if cond and cond["status"] == "False" and cond["reason"] == "NotOwned" else None

    cond = eventually(not_owned, timeout=60, what="Ready=False NotOwned")
    assert f"{taken} exists and is not controlled by any object, not LLMRoute chat" in cond["message"]
    # two more cycles (5 s apart) that find the name taken: still untouched, reported once
    failed = _failed_cycles(op.metrics_port)
    eventually(lambda: _failed_cycles(op.metrics_port) >= failed + 2, timeout=30, what="two more cycles")
    assert seen() == before
    warnings = events(api_client, namespace, "NotOwned")
    assert len(warnings) == 1 and warnings[0].type == "Warning" and taken in warnings[0].message

    delete()
    wait_reconciled(api_client, namespace, "chat")
    apps = client.AppsV1Api(api_client)
    owner = apps.read_namespaced_deployment("chat-proxy", namespace).metadata.owner_references
    assert [(r.kind, r.name) for r in owner] == [("LLMRoute", "chat")]


def _failed_cycles(port: int) -> float:
    """The operator's own count of failed reconcile cycles, from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "llmroute_operator_reconcile_errors":
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    return 0.0


def test_two_routes_naming_one_deployment_do_not_fight_over_its_replicas(
    api_client: client.ApiClient, namespace: str, start_operator: StartOperator, emitter: LoadEmitter
) -> None:
    """The older route scales it; the other reports the conflict, writes nothing, and takes over by
    itself when the first route is deleted. The second route registers after the first metrics cycle,
    in a namespace with a dash: its history backfill names it in a regex matcher (llmroute.prom.any_of)."""
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("gateway", replicas=1))
    emitter.set(f"{namespace}/first", rps=30)
    emitter.set(f"{namespace}/second", rps=90)
    start_operator(namespace)
    create_route(api_client, namespace, route_object("first", proxy={"deploymentName": "gateway"}))

    def settled(name: str) -> int | None:
        """The route's own recommendation once the Deployment has it."""
        wanted = _wanted(api_client, namespace, name)
        on_load = wanted is not None and wanted > 1  # past the first cycles' "no load data yet"
        return wanted if on_load and replicas(api_client, namespace, "gateway") == wanted else None

    eventually(lambda: settled("first"), timeout=90, what="first scales the Deployment")
    create_route(api_client, namespace, route_object("second", proxy={"deploymentName": "gateway"}))
    obj = wait_reconciled(api_client, namespace, "second")
    cond = condition(obj, "ScalingLimited") or {}
    assert (cond.get("status"), cond.get("reason")) == ("True", "ConflictingAutoscaler"), cond
    assert "LLMRoute/first targets the Deployment" in cond["message"]

    def wants() -> tuple[int | None, int | None]:
        return _wanted(api_client, namespace, "first"), _wanted(api_client, namespace, "second")

    def second_wants_more() -> tuple[int | None, int | None] | None:
        first_wants, second_wants = wants()
        return (first_wants, second_wants) if (second_wants or 0) > (first_wants or 0) > 1 else None

    eventually(second_wants_more, timeout=60, what="second wants more replicas than first")
    # two more cycles of each route: the replicas stay the first route's, not the second's
    for _ in range(2):
        for name in ("first", "second"):
            stamp = get_route(api_client, namespace, name)["status"]["load"]["time"]
            later_than(api_client, namespace, name, stamp)
            assert replicas(api_client, namespace, "gateway") == wants()[0], wants()
    first = condition(get_route(api_client, namespace, "first"), "ScalingLimited") or {}
    assert first.get("reason") != "ConflictingAutoscaler", first

    client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "first"
    )

    def took_over() -> int | None:
        """The second route's count on the Deployment, once its status no longer reports the conflict (the
        operator writes the replicas, then the status: between the two the old condition still reads)."""
        cond = condition(get_route(api_client, namespace, "second"), "ScalingLimited") or {}
        return settled("second") if cond.get("reason") != "ConflictingAutoscaler" else None

    eventually(took_over, timeout=90, what="second takes over and stops reporting ConflictingAutoscaler")


def _wanted(api: client.ApiClient, namespace: str, name: str) -> int | None:
    final = get_route(api, namespace, name).get("status", {}).get("recommendation", {}).get("final")
    return int(final) if isinstance(final, int) else None
