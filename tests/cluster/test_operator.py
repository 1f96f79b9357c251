"""The operator end to end: a real kopf operator process under the chart's RBAC, a real kube-apiserver +
kube-controller-manager, a real Prometheus scraping a real /metrics endpoint."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION
from llmroute.spec.proxyconfig import CONFIG_KEY, ProxyConfig
from llmroute.testing.load_emitter import LoadEmitter
from tests.cluster.conftest import StartOperator
from tests.cluster.operator_env import (
    condition,
    events,
    get_route,
    launch,
    replicas,
    route_object,
    wait_reconciled,
)
from tests.kube import create_route, eventually


def _policy(api: client.ApiClient, ns: str, name: str) -> client.V1NetworkPolicy | None:
    try:
        return client.NetworkingV1Api(api).read_namespaced_network_policy(name, ns)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _config(api: client.ApiClient, ns: str, name: str) -> ProxyConfig:
    cm = client.CoreV1Api(api).read_namespaced_config_map(f"{name}-proxy-config", ns)
    return ProxyConfig.loads(cm.data[CONFIG_KEY])


def test_children_are_created_adopted_and_garbage_collected(
    api_client: client.ApiClient, namespace: str, start_operator: StartOperator, emitter: LoadEmitter
) -> None:
    start_operator(namespace)
    create_route(api_client, namespace, route_object("chat", proxy={"networkPolicy": {"enabled": True}}))
    obj = wait_reconciled(api_client, namespace, "chat")
    uid = obj["metadata"]["uid"]
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    deployment = apps.read_namespaced_deployment("chat-proxy", namespace)
    service = core.read_namespaced_service("chat-proxy", namespace)
    configmap = core.read_namespaced_config_map("chat-proxy-config", namespace)
    policy = eventually(
        lambda: _policy(api_client, namespace, "chat-proxy"), timeout=30, what="NetworkPolicy written"
    )
    for child in (deployment, service, configmap, policy):
        refs = child.metadata.owner_references
        assert [(r.kind, r.name, r.uid, r.controller) for r in refs] == [("LLMRoute", "chat", uid, True)]
        assert child.metadata.labels["app.kubernetes.io/managed-by"] == "llmroute"
        assert child.metadata.labels["app.kubernetes.io/instance"] == "chat"
    pod = deployment.spec.template.spec
    assert pod.security_context.run_as_non_root and pod.automount_service_account_token is False
    # the Service exposes the API alone; the metrics port is the pod's, for Prometheus and the probes
    assert [(p.name, p.target_port) for p in service.spec.ports] == [("http", "http")]
    assert {p.name: p.container_port for p in pod.containers[0].ports} == {"http": 8080, "metrics": 9090}
    assert [p.port for rule in policy.spec.ingress for p in rule.ports] == [8080, 9090]
    assert (condition(obj, "Authenticated") or {}).get("status") == "True"
    config = ProxyConfig.loads(configmap.data[CONFIG_KEY])
    assert config.hash == obj["status"]["configHash"]
    assert [u.name for u in config.upstreams] == ["primary", "backup"]
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]

    client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "chat"
    )

    def gone() -> bool:
        names = [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items]
        cms = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]
        return "chat-proxy" not in names and "chat-proxy-config" not in cms

    eventually(gone, timeout=60, what="children garbage-collected")


def test_scales_up_with_load_and_down_only_after_stabilisation(
    api_client: client.ApiClient, namespace: str, start_operator: StartOperator, emitter: LoadEmitter
) -> None:
    route = launch(api_client, namespace, start_operator, emitter, "web")
    eventually(
        lambda: replicas(api_client, namespace, "web-proxy") == 1, timeout=60, what="1 replica at 5 rps"
    )

    emitter.set(route, rps=60)  # 10 rps per replica target -> 6 replicas
    started = time.monotonic()
    eventually(lambda: replicas(api_client, namespace, "web-proxy") >= 6, timeout=60, what="scale up to 6")
    scale_up_seconds = time.monotonic() - started
    assert scale_up_seconds < 60
    eventually(lambda: events(api_client, namespace, "ScaledUp"), timeout=20, what="ScaledUp event")

    emitter.set(route, rps=5)
    dropped = time.monotonic()
    # the 20 s scale-down stabilisation window starts no earlier than the drop: it holds until then
    while time.monotonic() - dropped < 19:
        assert replicas(api_client, namespace, "web-proxy") >= 6, (
            "scaled down inside the stabilisation window"
        )
        time.sleep(1)
    eventually(lambda: replicas(api_client, namespace, "web-proxy") == 1, timeout=90, what="scale down to 1")

    def recorded() -> list[int] | None:  # the replicas are written before the status of the same cycle
        history = (get_route(api_client, namespace, "web").get("status") or {}).get("history") or []
        tos = [d["to"] for d in history]
        return tos if tos and tos[-1] == 1 else None

    eventually(recorded, timeout=20, what="the scale-down to 1 in the status history")
    eventually(lambda: events(api_client, namespace, "ScaledDown"), timeout=20, what="ScaledDown event")


def test_failover_to_backup_group_and_failback_after_hysteresis(
    api_client: client.ApiClient, namespace: str, start_operator: StartOperator, emitter: LoadEmitter
) -> None:
    healthy = {"primary": {"share": 1.0, "error_rate": 0.0}}
    route = launch(
        api_client, namespace, start_operator, emitter, "fo", load={"rps": 20, "upstreams": healthy}
    )
    assert _config(api_client, namespace, "fo").active_group == 0

    emitter.set(route, rps=20, upstreams={"primary": {"share": 1.0, "error_rate": 0.6}})
    eventually(lambda: _config(api_client, namespace, "fo").active_group == 1, timeout=60, what="failover")

    def failed_over() -> dict[str, Any] | None:
        obj = get_route(api_client, namespace, "fo")
        return obj if (condition(obj, "FailedOver") or {}).get("status") == "True" else None

    obj = eventually(failed_over, timeout=20, what="FailedOver=True")
    assert obj["status"]["activeGroup"] == 1
    eventually(lambda: events(api_client, namespace, "FailedOver"), timeout=20, what="FailedOver event")

    recovered = time.monotonic()
    emitter.set(route, rps=20, upstreams=healthy)
    eventually(lambda: _config(api_client, namespace, "fo").active_group == 0, timeout=120, what="failback")
    # failback waits for sustained health (failbackAfterSeconds: 10) after the error window clears
    assert time.monotonic() - recovered >= 10
    eventually(
        lambda: (
            (condition(get_route(api_client, namespace, "fo"), "FailedOver") or {}).get("status") == "False"
        ),
        timeout=20,
        what="FailedOver=False",
    )
    eventually(lambda: events(api_client, namespace, "FailedBack"), timeout=20, what="FailedBack event")


def test_hands_off_when_an_hpa_targets_the_deployment(
    api_client: client.ApiClient, namespace: str, start_operator: StartOperator, emitter: LoadEmitter
) -> None:
    route = launch(api_client, namespace, start_operator, emitter, "hpa")
    hpa = client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="other"),
        spec=client.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=client.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name="hpa-proxy"
            ),
            min_replicas=1,
            max_replicas=3,
        ),
    )
    client.AutoscalingV2Api(api_client).create_namespaced_horizontal_pod_autoscaler(namespace, hpa)

    def limited() -> bool:
        cond = condition(get_route(api_client, namespace, "hpa"), "ScalingLimited")
        return bool(cond and cond["reason"] == "ConflictingAutoscaler")

    eventually(limited, timeout=60, what="ConflictingAutoscaler condition")
    eventually(
        lambda: events(api_client, namespace, "ConflictingAutoscaler"),
        timeout=20,
        what="ConflictingAutoscaler event",
    )
    before = replicas(api_client, namespace, "hpa-proxy")
    emitter.set(route, rps=80)
    stamp = get_route(api_client, namespace, "hpa")["status"]["load"]["time"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert replicas(api_client, namespace, "hpa-proxy") == before, "wrote replicas despite the HPA"
        time.sleep(1)
    assert get_route(api_client, namespace, "hpa")["status"]["load"]["time"] > stamp  # it kept reconciling


def test_pause_annotation_computes_but_writes_nothing(
    api_client: client.ApiClient, namespace: str, start_operator: StartOperator, emitter: LoadEmitter
) -> None:
    route = launch(api_client, namespace, start_operator, emitter, "paused")
    patch = {"metadata": {"annotations": {"llmroute.io/paused": "true"}}}
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "paused", patch
    )
    eventually(
        lambda: (
            (condition(get_route(api_client, namespace, "paused"), "ScalingLimited") or {}).get("reason")
            == "Paused"
        ),
        timeout=60,
        what="Paused condition",
    )
    emitter.set(route, rps=80)

    def would_scale() -> bool:
        status = get_route(api_client, namespace, "paused")["status"]
        return bool(status["recommendation"]["final"] >= 8)

    eventually(would_scale, timeout=60, what="recommendation computed while paused")
    assert replicas(api_client, namespace, "paused-proxy") == 1
