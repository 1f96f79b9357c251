"""Run the real operator as a subprocess under the Helm chart's own RBAC (a minted ServiceAccount token),
against the session's control plane and Prometheus, with load from a real /metrics endpoint."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION
from llmroute.testing.load_emitter import LoadEmitter
from llmroute_dev.binaries import ensure
from llmroute_dev.controlplane import ControlPlane
from llmroute_dev.procs import Process, free_port
from tests.kube import create_route, eventually

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "llmroute-system"


def chart_rbac(api: client.ApiClient) -> str:
    """Apply the chart's ServiceAccount and (Cluster)Roles/Bindings; return the ServiceAccount name."""
    helm = ensure(("helm",))["helm"]
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            "llmroute",
            str(ROOT / "helm" / "llmroute"),
            "--namespace",
            OPERATOR_NAMESPACE,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=OPERATOR_NAMESPACE)))
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    sa_name = ""
    for doc in yaml.safe_load_all(rendered):
        if not doc:
            continue
        kind = doc["kind"]
        create = {
            "ServiceAccount": lambda d: core.create_namespaced_service_account(OPERATOR_NAMESPACE, d),
            "ClusterRole": rbac.create_cluster_role,
            "ClusterRoleBinding": rbac.create_cluster_role_binding,
        }.get(kind)
        if kind == "ServiceAccount":
            sa_name = doc["metadata"]["name"]
        if create is None:
            continue
        try:
            create(doc)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    assert sa_name, "the chart renders no ServiceAccount"
    return sa_name


@dataclass
class OperatorProcess:
    """``llmroute operator -n NAMESPACE`` with test-speed settings; restartable."""

    kubeconfig: Path
    prometheus_url: str
    namespace: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: Process | None = None
    metrics_port: int = 0

    def start(self) -> OperatorProcess:
        self.metrics_port = free_port()
        env = dict(
            os.environ,
            KUBECONFIG=str(self.kubeconfig),
            LLMROUTE_PROMETHEUS_URL=self.prometheus_url,
            LLMROUTE_METRICS_INTERVAL_SECONDS="1",
            LLMROUTE_RATE_WINDOW="10s",
            LLMROUTE_SCRAPE_INTERVAL_SECONDS="1",  # the test Prometheus scrapes every second
            LLMROUTE_METRICS_PORT=str(self.metrics_port),
        )
        env.update(self.env)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        argv = [
            sys.executable,
            "-m",
            "llmroute",
            "operator",
            "--namespace",
            self.namespace,
            f"--liveness=http://127.0.0.1:{free_port()}/healthz",
        ]
        self.process = Process("operator", argv, self.workdir / "logs" / "operator.log", env=env).start()
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.process.tail(80) if self.process else ""


def mint_kubeconfig(cp: ControlPlane, api: client.ApiClient, sa: str, path: Path) -> Path:
    core = client.CoreV1Api(api)
    token = core.create_namespaced_service_account_token(
        sa,
        OPERATOR_NAMESPACE,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=86400)
        ),
    ).status.token
    return cp.write_kubeconfig(path, token=token, user=f"system:serviceaccount:{OPERATOR_NAMESPACE}:{sa}")


FAST: dict[str, Any] = {
    "reconcileIntervalSeconds": 5,
    "proxy": {"minReplicas": 1, "maxReplicas": 10},
    "upstreams": [
        {"name": "primary", "url": "http://127.0.0.1:9/v1", "model": "m", "group": 0},
        {"name": "backup", "url": "http://127.0.0.1:10/v1", "model": "m", "group": 1},
    ],
    "scaling": {
        "metric": {"type": "RequestsPerSecond", "targetPerReplica": 10},
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "policies": [{"type": "Pods", "value": 10, "periodSeconds": 5}],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": 20,
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}],
            },
        },
        "predictive": {"enabled": False},
        "fallback": {"staleAfterSeconds": 120},
    },
    "failover": {
        "windowSeconds": 30,
        "minRequests": 5,
        "cooldownSeconds": 5,
        "maxCooldownSeconds": 20,
        "failbackAfterSeconds": 10,
        "minDwellSeconds": 5,
    },
    "rateLimits": {"tiers": [{"name": "standard", "priority": 10, "requestsPerMinute": 6000}]},
}


def route_object(name: str, **overrides: Any) -> dict[str, Any]:
    spec = copy.deepcopy(FAST)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = _merge(spec[key], value)
        else:
            spec[key] = value
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMRoute", "metadata": {"name": name}, "spec": spec}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def get_route(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return obj


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)


def replicas(api: client.ApiClient, namespace: str, deployment: str) -> int:
    return int(
        client.AppsV1Api(api).read_namespaced_deployment_scale(deployment, namespace).spec.replicas or 0
    )


def events(api: client.ApiClient, namespace: str, reason: str | None = None) -> list[client.CoreV1Event]:
    items = client.CoreV1Api(api).list_namespaced_event(namespace).items
    return [e for e in items if reason is None or e.reason == reason]


def wait_reconciled(api: client.ApiClient, namespace: str, name: str, timeout: float = 60) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        obj = get_route(api, namespace, name)
        cond = condition(obj, "Ready")
        return obj if cond and cond["status"] == "True" else None

    return eventually(ready, timeout=timeout, what=f"{name} reconciled")


def later_than(
    api: client.ApiClient, namespace: str, name: str, stamp: str, timeout: float = 60
) -> dict[str, Any]:
    """Wait for a reconcile whose load snapshot is newer than ``stamp``."""

    def newer() -> dict[str, Any] | None:
        obj = get_route(api, namespace, name)
        current = obj.get("status", {}).get("load", {}).get("time", "")
        return obj if current > stamp else None

    return eventually(newer, timeout=timeout, what="a later reconcile")


def now_stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def launch(
    api: client.ApiClient,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    emitter: LoadEmitter,
    name: str,
    *,
    load: dict[str, Any] | None = None,
    **spec: Any,
) -> str:
    """The usual opening: load reported for the route, the operator running, the route created and
    reconciled once. Returns the route's key in the metrics (``namespace/name``)."""
    key = f"{namespace}/{name}"
    emitter.set(key, **(load or {"rps": 5}))
    start_operator(namespace)
    create_route(api, namespace, route_object(name, **spec))
    wait_reconciled(api, namespace, name)
    return key
