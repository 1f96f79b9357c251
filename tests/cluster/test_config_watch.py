"""Decision delivery through the API on the real control plane: the operator (under the chart's RBAC, so
the API's escalation check is real) gives each route a ServiceAccount, a Role on its ConfigMap alone and a
RoleBinding; a real proxy process with that ServiceAccount's token follows the ConfigMap through the API
while its file stays old; the token reads that ConfigMap and nothing else; the watch survives a bad
token, server-side watch ends and a recreated ConfigMap."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION
from llmroute.k8s.access import apply_access
from llmroute.proxy.kubewatch import ApiAccess, ConfigMapWatch
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.render.delivery import WATCH_VERBS
from llmroute.render.workload import build_configmap, build_route_access
from llmroute.spec.proxyconfig import CONFIG_KEY, ProxyConfig
from llmroute.spec.route import LLMRoute
from llmroute_dev.binaries import ensure
from llmroute_dev.controlplane import ControlPlane
from llmroute_dev.procs import Process, free_port
from tests.cluster.conftest import StartOperator
from tests.cluster.operator_env import route_object, wait_reconciled
from tests.kube import create_route, eventually

ROOT = Path(__file__).resolve().parents[2]


def _credentials(api: client.ApiClient, cp: ControlPlane, namespace: str, account: str, where: Path) -> Path:
    """The files the pod's projected volume holds: a fresh token of ``account``, the CA, the namespace."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "token").write_text(_token(api, namespace, account))
    (where / "ca.crt").write_bytes(cp.ca_file.read_bytes())
    (where / "namespace").write_text(namespace)
    return where


def _token(api: client.ApiClient, namespace: str, account: str) -> str:
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
    )
    token: str = (
        client.CoreV1Api(api)
        .create_namespaced_service_account_token(account, namespace, request)
        .status.token
    )
    return token


def _status(cp: ControlPlane, token: str, path: str) -> int:
    """HTTP status of a GET of ``path`` with ``token``."""
    req = urllib.request.Request(f"{cp.url}{path}", headers={"Authorization": f"Bearer {token}"})
    context = ssl.create_default_context(cafile=str(cp.ca_file))
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _readyz(url: str) -> dict[str, Any]:
    """The proxy's ``/readyz`` body; empty while it is not listening yet."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
            body: dict[str, Any] = json.loads(resp.read())
            return body
    except OSError:
        return {}


def _stored(api: client.ApiClient, namespace: str, name: str) -> ProxyConfig:
    cm = client.CoreV1Api(api).read_namespaced_config_map(name, namespace)
    return ProxyConfig.loads(cm.data[CONFIG_KEY])


def _written(api: client.ApiClient, namespace: str, retries: int) -> ProxyConfig | None:
    config = _stored(api, namespace, "chat-proxy-config")
    return config if config.passive_health.retries == retries else None


def _serving(url: str, config: ProxyConfig) -> dict[str, Any] | None:
    body = _readyz(url)
    return body if body.get("config") == config.hash else None


def test_the_operator_grants_a_watch_on_the_configmap_and_a_proxy_follows_it_through_the_api(
    api_client: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    start_operator: StartOperator,
    tmp_path: Path,
) -> None:
    start_operator(namespace)
    create_route(api_client, namespace, route_object("chat"))
    route = wait_reconciled(api_client, namespace, "chat")
    rbac, core = client.RbacAuthorizationV1Api(api_client), client.CoreV1Api(api_client)
    role = eventually(lambda: rbac.read_namespaced_role("chat-proxy", namespace), what="Role")
    binding = rbac.read_namespaced_role_binding("chat-proxy", namespace)
    account = core.read_namespaced_service_account("chat-proxy", namespace)
    assert [(r.resources, r.resource_names, r.verbs) for r in role.rules] == [
        (["configmaps"], ["chat-proxy-config"], list(WATCH_VERBS))
    ]
    assert [(s.kind, s.name) for s in binding.subjects] == [("ServiceAccount", "chat-proxy")]
    for obj in (role, binding, account):
        assert [(r.kind, r.uid) for r in obj.metadata.owner_references] == [
            ("LLMRoute", route["metadata"]["uid"])
        ]

    booted = _stored(api_client, namespace, "chat-proxy-config")
    assert booted.generation == 1
    config_file = tmp_path / "config.json"
    config_file.write_text(booted.dumps())  # the mounted file: it stays at generation 1 in this test
    creds = _credentials(api_client, control_plane, namespace, "chat-proxy", tmp_path / "creds")
    port, ops_port = free_port(), free_port()
    argv = [sys.executable, "-m", "llmroute", "proxy", f"--config={config_file}", "--host=127.0.0.1"]
    argv += [f"--port={port}", f"--metrics-port={ops_port}"]
    argv += ["--watch-configmap=chat-proxy-config", f"--api-credentials={creds}"]
    env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1")
    env["KUBERNETES_SERVICE_PORT"] = str(control_plane.apiserver_port)
    proxy = Process("proxy", argv, tmp_path / "proxy.log", env=env).start()
    url = f"http://127.0.0.1:{ops_port}"  # /readyz is on the operations port
    try:
        eventually(lambda: _readyz(url).get("source") == "api", timeout=20, what="the proxy watching the API")
        for retries in (4, 5):
            patch = {"spec": {"proxy": {"retries": retries}}}
            client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, "chat", patch
            )
            written = eventually(
                lambda r=retries: _written(api_client, namespace, r),  # type: ignore[misc]
                timeout=30,
                what="the operator writing the ConfigMap",
            )
            ready = eventually(
                lambda w=written: _serving(url, w),  # type: ignore[misc]
                timeout=10,
                what=f"the proxy serving generation {written.generation}",
            )
            assert ready["generation"] == written.generation and ready["source"] == "api"
            assert ready["file"] == booted.hash  # nothing came through the file
        assert written.generation == 3
    finally:
        proxy.stop()
    assert "Traceback" not in (tmp_path / "proxy.log").read_text()


def _access_for(api: client.ApiClient, namespace: str, name: str) -> LLMRoute:
    """A route's access written as the admin with the operator's own writer (no operator running)."""
    doc = route_object(name)
    doc["metadata"]["namespace"] = namespace
    route = LLMRoute.from_object(doc)
    access = build_route_access(route)
    assert len(apply_access(api, access)) == 3
    assert apply_access(api, access) == []  # what is stored reads back equal: nothing to put back
    return route


def _configmap(route: LLMRoute, retries: int, generation: int) -> dict[str, Any]:
    body = {
        "route": {"namespace": route.metadata.namespace, "name": route.metadata.name},
        "upstreams": [{"name": "a", "url": "http://127.0.0.1:9/v1", "model": "m"}],
        "passiveHealth": {"retries": retries},
        "generation": generation,
        "limits": {"identity": "Unauthenticated"},
    }
    return build_configmap(route, ProxyConfig.model_validate(body))


def test_the_proxy_token_reads_and_watches_its_configmap_and_nothing_else(
    api_client: client.ApiClient, control_plane: ControlPlane, namespace: str
) -> None:
    route = _access_for(api_client, namespace, "solo")
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, _configmap(route, 1, 1))
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "other"}, "data": {"x": "y"}})
    token = eventually(lambda: _token(api_client, namespace, "solo-proxy"), what="a token")
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    own = "fieldSelector=metadata.name%3Dsolo-proxy-config"
    assert _status(control_plane, token, f"{base}/solo-proxy-config") == 200
    assert _status(control_plane, token, f"{base}?watch=true&{own}&timeoutSeconds=1") == 200
    denied = [
        f"{base}/other",
        base,  # list
        f"{base}?{own}",  # list, even of its own
        f"{base}?watch=true&timeoutSeconds=1",  # watch of all
        f"{base}?watch=true&fieldSelector=metadata.name%3Dother&timeoutSeconds=1",
        f"/api/v1/namespaces/{namespace}/secrets",
        f"/api/v1/namespaces/{namespace}/pods",
    ]
    assert {path: _status(control_plane, token, path) for path in denied} == dict.fromkeys(denied, 403)


async def test_the_watch_follows_changes_through_a_bad_token_watch_ends_and_a_recreated_configmap(
    api_client: client.ApiClient, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    route = _access_for(api_client, namespace, "w")
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, _configmap(route, 1, 1))
    creds = _credentials(api_client, control_plane, namespace, "w-proxy", tmp_path / "creds")
    good = (creds / "token").read_text()
    (creds / "token").write_text("not-a-token")
    seen: list[tuple[int, str]] = []
    watch = ConfigMapWatch(
        ApiAccess(control_plane.url, creds),
        "w-proxy-config",
        lambda text, uid: seen.append((ProxyConfig.loads(text).generation, uid)),
        ProxyMetrics(),
        watch_seconds=2,  # the server ends each watch after about 2 s: the client must watch again
    )

    async def until(check: Any, what: str, within: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not check():
            assert asyncio.get_running_loop().time() < deadline, (
                f"{what}; seen {seen}, error {watch.last_error}"
            )
            await asyncio.sleep(0.05)

    watch.start()
    try:
        await until(lambda: watch.last_error and "401" in watch.last_error, "a 401 for a bad token")
        assert seen == []
        (creds / "token").write_text(good)  # the kubelet rotates the token: read again on the next request
        await until(lambda: [g for g, _ in seen] == [1], "the ConfigMap read with the new token")
        first_uid = seen[0][1]
        for generation in (2, 3):
            await asyncio.sleep(2.5)  # past the server's watch end
            patch = {"data": _configmap(route, generation, generation)["data"]}
            await asyncio.to_thread(core.patch_namespaced_config_map, "w-proxy-config", namespace, patch)
            await until(
                lambda g=generation: seen[-1][0] == g, f"generation {generation} through the watch", 5
            )
        await asyncio.to_thread(core.delete_namespaced_config_map, "w-proxy-config", namespace)
        await asyncio.to_thread(core.create_namespaced_config_map, namespace, _configmap(route, 1, 1))
        await until(lambda: seen[-1][0] == 1 and seen[-1][1] != first_uid, "the recreated ConfigMap", 5)
    finally:
        await watch.stop()


def _helm_rules(*values: str) -> list[dict[str, Any]]:
    helm = ensure(("helm",))["helm"]
    args = [
        str(helm),
        "template",
        "llmroute",
        str(ROOT / "helm" / "llmroute"),
        "--namespace",
        "llmroute-system",
    ]
    for value in values:
        args += ["--set", value]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d and d["kind"] in ("ClusterRole", "Role")]
    return [r for d in docs if d["metadata"]["name"] != "llmroute-discovery" for r in d["rules"]]


@pytest.mark.parametrize("values", [(), ("watchNamespaces={team-a}",)], ids=["cluster", "namespaced"])
def test_the_chart_grants_the_operator_exactly_what_the_proxies_roles_need(values: tuple[str, ...]) -> None:
    """The API lets the operator create a Role only with permissions it holds itself (no ``escalate``)."""
    granted = {
        (g, res, v)
        for r in _helm_rules(*values)
        for g in r["apiGroups"]
        for res in r["resources"]
        for v in r["verbs"]
    }
    for verb in WATCH_VERBS:
        assert ("", "configmaps", verb) in granted
    assert ("", "configmaps", "list") not in granted  # a watch by name needs no list
    for res in ("roles", "rolebindings"):
        assert {v for g, r, v in granted if (g, r) == ("rbac.authorization.k8s.io", res)} == {
            "get",
            "create",
            "patch",
        }
    assert {v for g, r, v in granted if (g, r) == ("", "serviceaccounts")} == {"get", "create"}
