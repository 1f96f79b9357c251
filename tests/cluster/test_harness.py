"""The local control plane behaves like a cluster where it matters to an operator: Deployments get
ReplicaSets and Pods, owned objects are garbage-collected, RBAC is enforced for minted tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client, config

from llmroute_dev.controlplane import ControlPlane
from tests.kube import deployment, eventually


def test_deployment_gets_replicaset_and_pods(api_client: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("web"))
    pods = eventually(
        lambda: [p for p in core.list_namespaced_pod(namespace).items if p.metadata.name.startswith("web-")],
        timeout=30,
        what="pods of the deployment",
    )
    eventually(lambda: len(core.list_namespaced_pod(namespace).items) == 2, what="two pods")
    assert pods[0].status.phase == "Pending"  # no scheduler, no kubelet: by design
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 3}})
    eventually(lambda: len(core.list_namespaced_pod(namespace).items) == 3, what="scaled to three pods")


def test_owned_objects_are_garbage_collected(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="child", owner_references=[ref]))
    )
    core.delete_namespaced_config_map("owner", namespace)

    def child_gone() -> bool:
        try:
            core.read_namespaced_config_map("child", namespace)
        except client.ApiException as exc:
            status: int = exc.status
            return status == 404
        return False

    eventually(child_gone, timeout=60, what="child garbage-collected")


def test_minted_service_account_token_is_bound_by_rbac(
    api_client: client.ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="bot"))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="cm-reader"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="bot-reads"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="cm-reader"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="bot", namespace=namespace)],
        ),
    )
    token = core.create_namespaced_service_account_token(
        "bot", namespace, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    ).status.token
    kubeconfig = control_plane.write_kubeconfig(
        tmp_path / "bot", token=token, user="bot", namespace=namespace
    )
    bot = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    eventually(lambda: bot.list_namespaced_config_map(namespace) is not None, what="RBAC allows configmaps")
    with pytest.raises(client.ApiException) as info:
        bot.list_namespaced_secret(namespace)
    assert info.value.status == 403
