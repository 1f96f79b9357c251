"""A reconcile that the API refuses shows up on the route: the operator runs under the chart's RBAC
narrowed so that one write is denied, and the route says ``Ready=False`` with reason ``Forbidden`` and the
API's own message, with one Warning Event however many cycles fail; once the permission is granted it is
``Ready=True`` again."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from llmroute.k8s.events import EventRecorder
from llmroute_dev.binaries import ensure
from llmroute_dev.controlplane import ControlPlane
from llmroute_dev.prometheus import Prometheus
from tests.cluster.operator_env import (
    OPERATOR_NAMESPACE,
    ROOT,
    OperatorProcess,
    condition,
    events,
    get_route,
    mint_kubeconfig,
    route_object,
)
from tests.kube import create_route, eventually

RELEASE = "narrow"


def _rendered(namespace: str) -> list[dict[str, Any]]:
    helm = ensure(("helm",))["helm"]
    chart = str(ROOT / "helm" / "llmroute")
    argv = [str(helm), "template", RELEASE, chart, "--namespace", OPERATOR_NAMESPACE]
    argv += ["--set", f"watchNamespaces={{{namespace}}}"]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _deny_deployment_create(role: dict[str, Any]) -> dict[str, Any]:
    for rule in role["rules"]:
        if rule["resources"] == ["deployments"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "create"]
    return role


@pytest.fixture
def narrow_rbac(
    api_client: client.ApiClient, namespace: str, crd_installed: None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The chart's RBAC for ``namespace`` only, with ``create`` on Deployments taken away. Yields the
    ServiceAccount's name and the chart's own (full) Role, to grant later."""
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    docs = _rendered(namespace)
    with_ns = {"ServiceAccount", "Role", "RoleBinding"}
    creators = {
        "ServiceAccount": lambda d: core.create_namespaced_service_account(d["metadata"]["namespace"], d),
        "ClusterRole": rbac.create_cluster_role,
        "ClusterRoleBinding": rbac.create_cluster_role_binding,
        "Role": lambda d: rbac.create_namespaced_role(d["metadata"]["namespace"], d),
        "RoleBinding": lambda d: rbac.create_namespaced_role_binding(d["metadata"]["namespace"], d),
    }
    created: list[dict[str, Any]] = []
    full_role: dict[str, Any] = {}
    sa = ""
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=OPERATOR_NAMESPACE)))
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    try:
        for doc in docs:
            kind = doc["kind"]
            if kind not in creators:
                continue
            if kind in with_ns:
                doc["metadata"].setdefault("namespace", OPERATOR_NAMESPACE)
            if kind == "ServiceAccount":
                sa = doc["metadata"]["name"]
            if kind == "Role":
                full_role = yaml.safe_load(yaml.safe_dump(doc))
                doc = _deny_deployment_create(doc)
            creators[kind](doc)
            created.append(doc)
        assert sa and full_role, "the chart renders a ServiceAccount and, with watchNamespaces, a Role"
        yield sa, full_role
    finally:
        for doc in reversed(created):
            _delete(core, rbac, doc)


def _delete(core: client.CoreV1Api, rbac: client.RbacAuthorizationV1Api, doc: dict[str, Any]) -> None:
    kind, name, ns = doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace")
    try:
        if kind == "ServiceAccount":
            core.delete_namespaced_service_account(name, ns)
        elif kind == "ClusterRole":
            rbac.delete_cluster_role(name)
        elif kind == "ClusterRoleBinding":
            rbac.delete_cluster_role_binding(name)
        elif kind == "Role":
            rbac.delete_namespaced_role(name, ns)
        elif kind == "RoleBinding":
            rbac.delete_namespaced_role_binding(name, ns)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def test_a_denied_write_is_reported_on_the_route_once_and_clears_when_granted(
    api_client: client.ApiClient,
    control_plane: ControlPlane,
    prometheus: Prometheus,
    namespace: str,
    narrow_rbac: tuple[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    sa, full_role = narrow_rbac
    kubeconfig = mint_kubeconfig(control_plane, api_client, sa, tmp_path / "kubeconfig")
    op = OperatorProcess(kubeconfig, prometheus.url, namespace, tmp_path / "op").start()
    try:
        create_route(api_client, namespace, route_object("denied"))

        def forbidden() -> dict[str, Any] | None:
            cond = condition(get_route(api_client, namespace, "denied"), "Ready")
            return cond if cond and cond["status"] == "False" and cond["reason"] == "Forbidden" else None

        cond = eventually(forbidden, timeout=60, what="Ready=False Forbidden")
        # the API's own words: who was refused what
        assert 'cannot create resource "deployments"' in cond["message"], cond["message"]
        assert f"system:serviceaccount:{OPERATOR_NAMESPACE}:{sa}" in cond["message"]
        watch_until = time.monotonic() + 15  # three reconcile intervals of 5 s, all failing
        while time.monotonic() < watch_until:
            assert len(events(api_client, namespace, "Forbidden")) <= 1, "reported on every cycle"
            time.sleep(1)
        warnings = events(api_client, namespace, "Forbidden")
        assert len(warnings) == 1 and warnings[0].type == "Warning"
        assert warnings[0].count in (None, 1)
        assert 'cannot create resource "deployments"' in warnings[0].message
        assert warnings[0].reporting_component == "llmroute-operator" and warnings[0].action == "Reconcile"

        rbac = client.RbacAuthorizationV1Api(api_client)
        rbac.replace_namespaced_role(full_role["metadata"]["name"], namespace, full_role)

        def ready_again() -> dict[str, Any] | None:
            cond = condition(get_route(api_client, namespace, "denied"), "Ready")
            return cond if cond and cond["status"] == "True" else None

        eventually(ready_again, timeout=60, what="Ready=True once the write is allowed")
        apps = client.AppsV1Api(api_client)
        assert apps.read_namespaced_deployment("denied-proxy", namespace).spec.replicas >= 1
        eventually(lambda: events(api_client, namespace, "Reconciled"), timeout=30, what="a Reconciled Event")
    except BaseException:
        print(f"--- operator log ---\n{op.log()}")
        raise
    finally:
        op.stop()


def test_events_are_reported_by_llmroute_and_repeats_are_counted_on_one_object(
    api_client: client.ApiClient, namespace: str, crd_installed: None
) -> None:
    route = create_route(api_client, namespace, route_object("counted"))
    recorder = EventRecorder(api_client, instance="llmroute-operator-7d9f-abcde")
    for _ in range(3):
        recorder.record(route, "Warning", "MetricsUnavailable", "Prometheus is down", "ReadMetrics")
    recorder.record(route, "Normal", "MetricsRecovered", "back", "ReadMetrics")
    posted = client.EventsV1Api(api_client).list_namespaced_event(namespace).items
    unavailable = [e for e in posted if e.reason == "MetricsUnavailable"]
    assert len(unavailable) == 1, "a repeat became a new object"
    event = unavailable[0]
    assert event.series is not None and event.series.count == 3
    assert (event.reporting_controller, event.reporting_instance) == ("llmroute-operator", recorder.instance)
    assert event.action == "ReadMetrics" and event.note == "Prometheus is down"
    assert (event.regarding.kind, event.regarding.name) == ("LLMRoute", "counted")
    assert [e.reason for e in posted if e.reason == "MetricsRecovered"] == ["MetricsRecovered"]
    # kubectl describe's view (core/v1) of the same objects
    core = events(api_client, namespace, "MetricsUnavailable")
    assert len(core) == 1 and core[0].reporting_component == "llmroute-operator"
