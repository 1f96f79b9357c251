"""How long an operator decision takes to reach running proxies through the ConfigMap volume today (the
old path), with the kubelet's default settings: LLMRoute patch → operator writes the ConfigMap → kubelet
swaps the mounted file → proxy serving the new config hash (``/readyz`` of every pod, polled directly)."""

from __future__ import annotations

import json
import statistics
import time
import urllib.request

from llmroute_dev.node.node import Node
from llmroute_dev.procs import wait_for
from tests.node.conftest import FIGURES, Route

ROUNDS = 3
REPLICAS = 3


def _pod_ips(node: Node, route: Route) -> dict[str, str]:
    out = node.kubectl(
        "-n",
        route.namespace,
        "get",
        "pods",
        "-l",
        f"app.kubernetes.io/instance={route.name}",
        "-o",
        "jsonpath={range .items[?(@.status.podIP)]}{.metadata.name}={.status.podIP} {end}",
    )
    return dict(item.split("=", 1) for item in out.split())


def _serving(ip: str) -> str:
    with urllib.request.urlopen(f"http://{ip}:8080/readyz", timeout=2) as resp:
        return str(json.loads(resp.read())["config"])


def _config_hash(node: Node, route: Route) -> str:
    return node.kubectl(
        "-n",
        route.namespace,
        "get",
        "configmap",
        f"{route.name}-proxy-config",
        "-o",
        "jsonpath={.metadata.annotations.llmroute\\.io/config-hash}",
    )


def test_configmap_volume_delivery_latency_with_default_kubelet_settings(node: Node, route: Route) -> None:
    patch = {"spec": {"proxy": {"minReplicas": REPLICAS}}}
    node.kubectl(
        "-n", route.namespace, "patch", "llmroute", route.name, "--type=merge", "-p", json.dumps(patch)
    )

    def all_ready() -> bool:
        ips = _pod_ips(node, route)
        return len(ips) == REPLICAS and all(_serving(ip) == _config_hash(node, route) for ip in ips.values())

    wait_for(all_ready, timeout=240, what=f"{REPLICAS} proxies serving the current config", interval=1)
    to_configmap: list[float] = []
    configmap_to_pod: list[float] = []
    patch_to_pod: list[float] = []
    for retries in range(1, ROUNDS + 1):
        old = _config_hash(node, route)
        patched = time.monotonic()
        node.kubectl(
            "-n",
            route.namespace,
            "patch",
            "llmroute",
            route.name,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"proxy": {"retries": 2 + retries}}}),  # default 2: always a change
        )
        wait_for(
            lambda old=old: _config_hash(node, route) not in ("", old),  # type: ignore[misc]
            timeout=60,
            what="ConfigMap written",
            interval=0.1,
        )
        written = time.monotonic()
        new = _config_hash(node, route)
        pending = dict(_pod_ips(node, route))
        deadline = written + 180
        while pending and time.monotonic() < deadline:
            for name, ip in list(pending.items()):
                if _serving(ip) == new:
                    now = time.monotonic()
                    configmap_to_pod.append(now - written)
                    patch_to_pod.append(now - patched)
                    del pending[name]
            time.sleep(0.2)
        assert not pending, f"pods {sorted(pending)} never served {new}"
        to_configmap.append(written - patched)
    FIGURES["old_path_delivery"] = {
        "samples": len(configmap_to_pod),
        "patch_to_configmap_seconds": _summary(to_configmap),
        "configmap_to_pod_seconds": _summary(configmap_to_pod),
        "patch_to_pod_seconds": _summary(patch_to_pod),
    }


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "min": round(ordered[0], 1),
        "median": round(statistics.median(ordered), 1),
        "max": round(ordered[-1], 1),
        "values": [round(v, 1) for v in ordered],  # type: ignore[dict-item]
    }
