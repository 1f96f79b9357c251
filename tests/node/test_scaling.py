"""Real scaling on the node: a real Prometheus discovers the proxy pods through the apiserver, the
operator reads the load from it and raises replicas, new pods pass readiness and take traffic, and then
it scales back down, with no request failing on the way up or down (preStop + drain)."""

from __future__ import annotations

import json
import time

from llmroute_dev.node.node import Node
from llmroute_dev.node.prometheus import NodePrometheus
from llmroute_dev.procs import wait_for
from tests.node.conftest import FIGURES, Route
from tests.node.traffic import Traffic


def _ready_replicas(node: Node, route: Route) -> int:
    out = node.kubectl(
        "-n",
        route.namespace,
        "get",
        "deployment",
        f"{route.name}-proxy",
        "-o",
        "jsonpath={.spec.replicas} {.status.readyReplicas}",
    )
    spec, _, ready = out.partition(" ")
    return min(int(spec), int(ready or 0))


def _serving_pods(prom: NodePrometheus, route: Route) -> set[str]:
    rows = prom.query(
        f'sum by (pod) (increase(llmroute_requests_total{{namespace="{route.namespace}"}}[20s])) > 0'
    )
    return {r["metric"]["pod"] for r in rows}


def test_prometheus_discovers_the_proxy_pods(node_prometheus: NodePrometheus, route: Route) -> None:
    def discovered() -> bool:
        targets = node_prometheus.active_targets()
        proxies = [t for t in targets if t["labels"].get("namespace") == route.namespace]
        return bool(proxies) and all(t["health"] == "up" for t in proxies)

    wait_for(discovered, timeout=60, what="proxy pods discovered and scraped", interval=1)


def test_load_scales_up_and_down_without_a_failed_request(
    node: Node, node_prometheus: NodePrometheus, route: Route
) -> None:
    assert _ready_replicas(node, route) == 1
    fresh = Traffic(route.service_url, rate=32, keepalive=False).start()  # many clients
    pooled = Traffic(route.service_url, rate=6, keepalive=True).start()  # one client, kept connections
    started = time.monotonic()
    try:
        wait_for(lambda: _ready_replicas(node, route) >= 3, timeout=150, what="scale-up to >= 3", interval=1)
        up = time.monotonic()
        wait_for(
            lambda: len(_serving_pods(node_prometheus, route)) >= 3,
            timeout=60,
            what="new pods taking traffic",
            interval=1,
        )
        peak = _ready_replicas(node, route)
        fresh.rate = 2
        pooled.rate = 2
        down_from = time.monotonic()
        wait_for(lambda: _ready_replicas(node, route) == 1, timeout=240, what="scale-down to 1", interval=1)
        down = time.monotonic()
        # the last pods' drain (preStop 5 s + 3 s) ends after the Deployment says 1: keep traffic through it
        wait_for(lambda: _pods(node, route) == 1, timeout=60, what="terminated pods gone", interval=1)
    finally:
        fresh.stop()
        pooled.stop()
    llmr = json.loads(node.kubectl("-n", route.namespace, "get", "llmroute", route.name, "-o", "json"))
    FIGURES["scaling"] = {
        "load_to_3_ready_seconds": round(up - started, 1),
        "peak_replicas": peak,
        "scale_down_seconds": round(down - down_from, 1),
        "scale_up_outcomes": dict(fresh.counts(started, down_from) + pooled.counts(started, down_from)),
        "scale_down_outcomes": dict(fresh.counts(down_from) + pooled.counts(down_from)),
        "status_load": llmr["status"].get("load"),
    }
    assert fresh.failures() == 0, fresh.counts()
    assert pooled.failures() == 0, pooled.counts()
    metrics = {c["type"]: c["status"] for c in llmr["status"]["conditions"]}
    assert metrics.get("MetricsAvailable") == "True", llmr["status"]["conditions"]


def _pods(node: Node, route: Route) -> int:
    names = node.kubectl(
        "-n", route.namespace, "get", "pods", "-l", f"app.kubernetes.io/instance={route.name}", "-o", "name"
    )
    return len(names.split())
