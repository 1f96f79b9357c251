"""The real-node tier: one node per session (kubelet + containerd + kube-proxy + control plane on a bridge),
the locally built image loaded into it, a fake upstream on the bridge address, a real Prometheus that
discovers pods through the apiserver, the Helm chart installed, and ``manifests/examples/minimal.yaml``
applied (pointed at the fake upstream). Measured figures are collected in ``FIGURES`` and written to
``out/node-figures.json`` at the end of the session.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from llmroute_dev.node.image import BuiltImage, build
from llmroute_dev.node.network import NODE_IP, chains
from llmroute_dev.node.node import Node
from llmroute_dev.node.prometheus import NodePrometheus
from llmroute_dev.procs import Process, free_port, wait_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "out"
FIGURES: dict[str, Any] = {}
RELEASE_NAMESPACE = "llmroute-system"
ROUTE_NAMESPACE = "llm"
CLIENT_KEY = "sk-node-test-client"  # in the team-keys Secret minimal.yaml's tier reads
# minimal.yaml as shipped, plus what a test on one small node needs: the fake upstream, quick reaction
SCALING = {
    "metric": {"type": "RequestsPerSecond", "targetPerReplica": 10},
    "behavior": {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 5}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 20,
            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 10}],
        },
    },
    "predictive": {"enabled": False},
}


# the last three change the release: HA upgrade, uninstall, then the previous chart's upgrade path
ORDER = (
    "test_image",
    "test_install",
    "test_scaling",
    "test_dashboard",
    "test_restarts",
    "test_delivery",
    "test_global_limit",
    "test_ha",
    "test_uninstall",
    "test_upgrade",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tier; run its modules in the order the shared route goes through (1 replica first)."""
    node_items = [i for i in items if i.path.is_relative_to(HERE)]
    for item in node_items:
        item.add_marker(pytest.mark.node)
    if node_items:
        rank = {name: i for i, name in enumerate(ORDER)}
        ordered = sorted(node_items, key=lambda i: rank.get(i.path.stem, len(ORDER)))
        first = items.index(node_items[0])
        rest = [i for i in items if i not in node_items]
        items[:] = rest[:first] + ordered + rest[first:]


_RUNNING: list[Node] = []  # the session's node while it runs, for the failure report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed node test reports what the operator saw and did: its log, the routes' status, the events."""
    report = yield
    if report.failed and _RUNNING and item.path.is_relative_to(HERE):
        for title, text in _node_state(_RUNNING[0]).items():
            report.sections.append((title, text))
    return report


def _node_state(node: Node) -> dict[str, str]:
    def run(*args: str) -> str:
        try:
            return node.kubectl(*args, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"kubectl {' '.join(args)}: {type(exc).__name__}"

    routes = run("get", "llmroute", "-A", "-o", "json")
    try:
        status = json.dumps([r.get("status") for r in json.loads(routes)["items"]], indent=1)
    except (ValueError, KeyError):
        status = routes
    selector = "app.kubernetes.io/name=llmroute"
    events = run("get", "events", "-A", "--sort-by=.lastTimestamp").splitlines()
    return {
        "operator log (tail)": run("-n", RELEASE_NAMESPACE, "logs", "-l", selector, "--tail=60", "--prefix"),
        "LLMRoute status": status,
        "deployments": run("get", "deployment", "-A", "-o", "wide"),
        "events (last 40)": "\n".join(events[-40:]),
    }


@pytest.fixture(scope="session")
def node_image() -> BuiltImage:
    if os.geteuid() != 0:
        pytest.skip("the node tier needs root (bridge, iptables, containerd)")
    image = build()
    FIGURES["image"] = {
        "reference": image.reference,
        "compressed_mb": round(image.compressed_bytes / 1e6, 1),
        "unpacked_mb": round(image.unpacked_bytes / 1e6, 1),
        "build_seconds": round(image.build_seconds, 1),
        "from_cache": image.cached,
    }
    return image


@pytest.fixture(scope="session")
def node(node_image: BuiltImage) -> Iterator[Node]:
    before = chains()
    running = Node((node_image,)).start()
    FIGURES["node_start_seconds"] = round(running.timings["start_seconds"], 1)
    _RUNNING.append(running)
    try:
        yield running
    finally:
        _RUNNING.clear()
        undone = running.stop()
        FIGURES["teardown_seconds"] = round(running.timings["stop_seconds"], 1)
        FIGURES["teardown"] = undone
        FIGURES["leftover_chains"] = {
            k: sorted(v - before.get(k, set())) for k, v in chains().items() if v - before.get(k, set())
        }
        OUT.mkdir(exist_ok=True)
        (OUT / "node-figures.json").write_text(json.dumps(FIGURES, indent=2))
        logs = OUT / "test-logs" / "node"
        shutil.rmtree(logs, ignore_errors=True)
        shutil.copytree(running.log_dir, logs)
        print(f"\nnode tier figures (out/node-figures.json):\n{json.dumps(FIGURES, indent=2)}")


@pytest.fixture(scope="session")
def node_api(node: Node) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(node.kubeconfig))


@dataclass
class Upstream:
    url: str  # http://<bridge address>:<port>/v1, reachable from pods and the host
    process: Process


@pytest.fixture(scope="session")
def fake_upstream(node: Node) -> Iterator[Upstream]:
    port = free_port()
    argv = [sys.executable, "-m", "llmroute.testing.fake_upstream", "--host", NODE_IP, "--port", str(port)]
    proc = Process("fake-upstream", argv, node.log_dir / "fake-upstream.log").start()
    url = f"http://{NODE_IP}:{port}/v1"

    def listening() -> bool:
        proc.check_alive()
        return "listening" in proc.log_path.read_text()

    wait_for(listening, timeout=20, what="fake upstream")
    try:
        yield Upstream(url, proc)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def node_prometheus(node: Node) -> Iterator[NodePrometheus]:
    assert node.control_plane is not None
    cp = node.control_plane
    binary = node.bins["prometheus"]
    prom = NodePrometheus(binary, node.workdir / "prometheus", cp.url, cp.ca_file, cp.admin_token).start()
    try:
        yield prom
    finally:
        prom.stop()


def helm(node: Node, *args: str) -> str:
    argv = [str(node.bins["helm"]), f"--kubeconfig={node.kubeconfig}", *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=300).stdout


@dataclass
class Installed:
    started: float  # time.monotonic() when `helm install` began
    operator_ready: float


@pytest.fixture(scope="session")
def chart(node: Node, node_prometheus: NodePrometheus) -> Installed:
    started = time.monotonic()
    helm(
        node,
        "install",
        "llmroute",
        str(ROOT / "helm" / "llmroute"),
        "--namespace",
        RELEASE_NAMESPACE,
        "--create-namespace",
        "--set",
        f"prometheusUrl={node_prometheus.url}",
        "--set",
        "metricsIntervalSeconds=5",
        "--set",  # as a user must: the Prometheus' own scrape interval sets the operator's rate window
        f"scrapeIntervalSeconds={node_prometheus.interval_seconds}",
        "--wait",
        "--timeout=3m",
    )
    node.kubectl(
        "-n",
        RELEASE_NAMESPACE,
        "wait",
        "pod",
        "-l",
        "app.kubernetes.io/name=llmroute",
        "--for=condition=Ready",
        "--timeout=120s",
    )
    installed = Installed(started, time.monotonic())
    FIGURES["helm_install_to_operator_ready_seconds"] = round(installed.operator_ready - started, 1)
    return installed


def route_manifest(upstream_url: str, **spec: Any) -> dict[str, Any]:
    """``manifests/examples/minimal.yaml`` pointed at the fake upstream, with quick scaling for the test."""
    route: dict[str, Any] = yaml.safe_load((ROOT / "manifests" / "examples" / "minimal.yaml").read_text())
    route["metadata"]["namespace"] = ROUTE_NAMESPACE
    route["spec"]["upstreams"][0]["url"] = upstream_url
    route["spec"]["reconcileIntervalSeconds"] = 5
    route["spec"]["scaling"] = copy.deepcopy(SCALING)
    route["spec"].update(spec)
    return route


@dataclass
class Route:
    name: str
    namespace: str
    service_url: str  # http://<ClusterIP>:80


@pytest.fixture(scope="session")
def route(node: Node, chart: Installed, fake_upstream: Upstream) -> Route:
    node.kubectl("create", "namespace", ROUTE_NAMESPACE)
    node.kubectl(
        "-n",
        ROUTE_NAMESPACE,
        "create",
        "secret",
        "generic",
        "openai-credentials",
        "--from-literal=api-key=sk-test-not-a-real-key",
    )
    node.kubectl(
        "-n", ROUTE_NAMESPACE, "create", "secret", "generic", "team-keys", f"--from-literal=keys={CLIENT_KEY}"
    )
    manifest = route_manifest(fake_upstream.url)
    node.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    name = manifest["metadata"]["name"]

    def ready_proxy() -> bool:
        n = node.kubectl(
            "-n",
            ROUTE_NAMESPACE,
            "get",
            "deployment",
            f"{name}-proxy",
            "-o",
            "jsonpath={.status.readyReplicas}",
            check=False,
        )
        return n.isdigit() and int(n) >= 1

    wait_for(ready_proxy, timeout=180, what="a Ready proxy pod", interval=0.25)
    FIGURES["helm_install_to_ready_proxy_seconds"] = round(time.monotonic() - chart.started, 1)
    cluster_ip = node.kubectl(
        "-n", ROUTE_NAMESPACE, "get", "service", f"{name}-proxy", "-o", "jsonpath={.spec.clusterIP}"
    )
    url = f"http://{cluster_ip}:80"
    # kube-proxy programs the Service a moment after the endpoint turns ready
    wait_for(lambda: _models_ok(url), timeout=30, what="the Service answering", interval=0.1)
    FIGURES["helm_install_to_service_answering_seconds"] = round(time.monotonic() - chart.started, 1)
    return Route(name, ROUTE_NAMESPACE, url)


def _models_ok(url: str) -> bool:
    request = urllib.request.Request(f"{url}/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    with urllib.request.urlopen(request, timeout=2) as resp:
        return bool(resp.status == 200)
