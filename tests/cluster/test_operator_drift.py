"""Hand edits of the children llmroute owns: a changed pod template, Service or NetworkPolicy is put
back within a cycle, with a Warning Event saying what and where to change it instead;
``kubectl rollout restart`` (kubectl's own template annotation) is not an edit and is kept."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from llmroute.testing.load_emitter import LoadEmitter
from tests.cluster.conftest import StartOperator
from tests.cluster.operator_env import events, get_route, later_than, launch
from tests.kube import eventually

RESTARTED = "kubectl.kubernetes.io/restartedAt"


def _image(api: client.ApiClient, ns: str) -> str:
    return str(
        client.AppsV1Api(api)
        .read_namespaced_deployment("chat-proxy", ns)
        .spec.template.spec.containers[0]
        .image
    )


def _cycles(api: client.ApiClient, ns: str, n: int) -> dict[str, Any]:
    obj = get_route(api, ns, "chat")
    for _ in range(n):
        obj = later_than(api, ns, "chat", obj["status"]["load"]["time"])
    return obj


def test_hand_edits_of_owned_children_are_put_back_and_reported(
    api_client: client.ApiClient, namespace: str, start_operator: StartOperator, emitter: LoadEmitter
) -> None:
    launch(api_client, namespace, start_operator, emitter, "chat", proxy={"networkPolicy": {"enabled": True}})
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    networking = client.NetworkingV1Api(api_client)
    image = _image(api_client, namespace)
    selector = core.read_namespaced_service("chat-proxy", namespace).spec.selector

    def ingress() -> Any:
        policy = eventually(lambda: _policy(networking, namespace), timeout=30, what="NetworkPolicy")
        return api_client.sanitize_for_serialization(policy.spec.ingress)

    rules = ingress()

    # kubectl rollout restart: a template annotation of kubectl's, kept and not reported
    restart = {"spec": {"template": {"metadata": {"annotations": {RESTARTED: "2026-01-01T00:00:00Z"}}}}}
    apps.patch_namespaced_deployment("chat-proxy", namespace, restart)
    _cycles(api_client, namespace, 2)
    template = apps.read_namespaced_deployment("chat-proxy", namespace).spec.template
    assert template.metadata.annotations[RESTARTED] == "2026-01-01T00:00:00Z"
    assert not events(api_client, namespace, "Restored")

    # a changed image and a Service pointed elsewhere
    edit = {
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "example.invalid/x:1"}]}}}
    }
    apps.patch_namespaced_deployment("chat-proxy", namespace, edit)
    core.patch_namespaced_service(
        "chat-proxy", namespace, {"spec": {"selector": {"app.kubernetes.io/name": "other", "extra": "x"}}}
    )
    networking.patch_namespaced_network_policy("chat-proxy", namespace, {"spec": {"ingress": [{}]}})  # all
    eventually(lambda: _image(api_client, namespace) == image, timeout=30, what="image put back")
    eventually(lambda: ingress() == rules, timeout=30, what="NetworkPolicy put back")
    eventually(
        lambda: core.read_namespaced_service("chat-proxy", namespace).spec.selector == selector,
        timeout=30,
        what="selector put back",
    )
    _cycles(api_client, namespace, 2)  # and left alone after: one Event each
    restored = events(api_client, namespace, "Restored")
    assert sorted(e.message.split(":")[0] for e in restored) == [
        "Deployment chat-proxy",
        "Service chat-proxy",
    ]
    assert all(e.type == "Warning" and e.count in (None, 1) for e in restored)
    assert "spec.proxy.template" in restored[0].message
    template = apps.read_namespaced_deployment("chat-proxy", namespace).spec.template
    assert template.metadata.annotations[RESTARTED] == "2026-01-01T00:00:00Z"


def _policy(api: client.NetworkingV1Api, namespace: str) -> client.V1NetworkPolicy | None:
    try:
        return api.read_namespaced_network_policy("chat-proxy", namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
