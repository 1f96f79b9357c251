"""The dashboard's resource panels on a real node: every panel query that reads the containers' CPU or
memory (cAdvisor, served by the real kubelet and scraped as kube-prometheus-stack's kubelet job does)
answers for each running proxy pod of the route, through the dashboard's own join on
``llmroute_proxy_config_info`` (the part the cluster tier, without a kubelet, cannot run)."""

from __future__ import annotations

import json
import math
from typing import Any

from llmroute_dev.monitoring.files import dashboard_targets
from llmroute_dev.monitoring.promql import concrete, metric_names, route_regex
from llmroute_dev.node.node import Node
from llmroute_dev.node.prometheus import NodePrometheus
from llmroute_dev.procs import wait_for
from tests.node.conftest import ROOT, Route
from tests.node.traffic import Traffic

CADVISOR = {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes"}


def _resource_queries() -> list[tuple[str, str]]:
    return [(q.panel, q.expr) for q in dashboard_targets(ROOT) if metric_names(q.expr) & CADVISOR]


def _proxy_pods(node: Node, route: Route) -> set[str]:
    selector = f"app.kubernetes.io/instance={route.name}"
    listed = node.kubectl("-n", route.namespace, "get", "pods", "-l", selector, "-o", "json")
    pods = json.loads(listed)["items"]
    return {
        p["metadata"]["name"]
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    }


def test_resource_panels_answer_for_every_proxy_pod(
    node: Node, node_prometheus: NodePrometheus, route: Route
) -> None:
    queries = _resource_queries()
    assert {t for t, _ in queries} == {"Proxy CPU", "Proxy memory"}, queries
    traffic = Traffic(route.service_url, rate=5, keepalive=False).start()  # the proxies do some work
    answers: dict[str, dict[str, float]] = {}
    try:
        for title, expr in queries:
            promql = concrete(expr, route=route_regex(f"{route.namespace}/{route.name}"), rate_interval="1m")

            def answered(title: str = title, promql: str = promql) -> bool:
                rows: list[dict[str, Any]] = node_prometheus.query(promql)
                values = {r["metric"].get("pod", "?"): float(r["value"][1]) for r in rows}
                answers[title] = values
                pods = _proxy_pods(node, route)
                return bool(pods) and pods <= set(values) and all(math.isfinite(values[p]) for p in pods)

            wait_for(answered, timeout=90, what=f"{title}: a value for every proxy pod", interval=2)
    finally:
        traffic.stop()
    assert traffic.failures() == 0, traffic.counts()
    for title, values in answers.items():
        assert all(v > 0 for v in values.values()), (title, values)  # a running proxy uses CPU and memory
        assert all(p.startswith(f"{route.name}-proxy-") for p in values), (title, values)  # proxies only
