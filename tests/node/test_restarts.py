"""Restarts mid-traffic: the operator pod (nothing lost, no spurious writes to what it manages) and a proxy
pod (its replacement passes readiness; no request fails while one drains and the other starts)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from llmroute_dev.node.node import Node
from llmroute_dev.procs import wait_for
from tests.node.conftest import FIGURES, RELEASE_NAMESPACE, Route
from tests.node.traffic import Traffic

OPERATOR = "app.kubernetes.io/name=llmroute"


@pytest.fixture(scope="module", autouse=True)
def two_replicas(node: Node, route: Route) -> None:
    """At least two proxies, so one can restart while the other serves (a single replica cannot)."""
    patch = json.dumps({"spec": {"proxy": {"minReplicas": 2}}})
    node.kubectl("-n", route.namespace, "patch", "llmroute", route.name, "--type=merge", "-p", patch)

    def ready() -> bool:
        status = _get(node, route.namespace, "deployment", f"{route.name}-proxy")["status"]
        return int(status.get("readyReplicas") or 0) >= 2 and status.get("replicas") == status.get(
            "readyReplicas"
        )

    wait_for(ready, timeout=120, what="two Ready proxies", interval=0.5)


def _get(node: Node, namespace: str, kind: str, name: str) -> Any:
    return json.loads(node.kubectl("-n", namespace, "get", kind, name, "-o", "json"))


def _written(node: Node, route: Route) -> tuple[object, ...]:
    """What the operator writes to its children: Deployment generation and replicas, ConfigMap version."""
    dep = _get(node, route.namespace, "deployment", f"{route.name}-proxy")
    cm = _get(node, route.namespace, "configmap", f"{route.name}-proxy-config")
    return dep["metadata"]["generation"], dep["spec"]["replicas"], cm["metadata"]["resourceVersion"]


def _pod_names(node: Node, namespace: str, selector: str) -> list[str]:
    out = node.kubectl(
        "-n",
        namespace,
        "get",
        "pods",
        "-l",
        selector,
        "-o",
        "jsonpath={range .items[?(@.status.phase=='Running')]}{.metadata.name} {end}",
    )
    return out.split()


def _steady(node: Node, route: Route, *, window: float, timeout: float) -> tuple[object, ...]:
    """What the operator has written, once it stayed the same for ``window`` seconds (polled each second)."""
    deadline = time.monotonic() + timeout
    value, since = _written(node, route), time.monotonic()
    while time.monotonic() < deadline:
        now = _written(node, route)
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= window:
            return value
        time.sleep(1)
    raise AssertionError(f"no steady state within {timeout}s (last {value})")


def test_operator_restart_mid_traffic_loses_nothing_and_writes_nothing(node: Node, route: Route) -> None:
    traffic = Traffic(route.service_url, rate=8, keepalive=True).start()
    try:
        steady = _steady(node, route, window=15, timeout=120)
        old = _pod_names(node, RELEASE_NAMESPACE, OPERATOR)
        started = time.monotonic()
        node.kubectl("-n", RELEASE_NAMESPACE, "delete", "pod", *old, "--wait=false")
        wait_for(
            lambda: (
                (names := _pod_names(node, RELEASE_NAMESPACE, OPERATOR)) != [] and set(names).isdisjoint(old)
            ),
            timeout=120,
            what="a new operator pod",
            interval=0.5,
        )
        node.kubectl(
            "-n", RELEASE_NAMESPACE, "wait", "pod", "-l", OPERATOR, "--for=condition=Ready", "--timeout=120s"
        )
        back = time.monotonic()
        before_status = _get(node, route.namespace, "llmroute", route.name)["status"]
        # the new operator reconciles the route (status rewritten by it) and changes nothing it manages
        wait_for(
            lambda: _get(node, route.namespace, "llmroute", route.name)["status"] != before_status,
            timeout=90,
            what="the new operator reconciling",
            interval=1,
        )
        after = _written(node, route)
    finally:
        traffic.stop()
    FIGURES["operator_restart"] = {
        "pod_back_seconds": round(back - started, 1),
        "outcomes": dict(traffic.counts()),
    }
    assert after == steady, f"the restarted operator wrote to its children: {steady} -> {after}"
    assert traffic.failures() == 0, traffic.counts()


def test_proxy_pod_restart_mid_traffic_fails_no_request(node: Node, route: Route) -> None:
    selector = f"app.kubernetes.io/instance={route.name}"
    fresh = Traffic(route.service_url, rate=10, keepalive=False).start()
    pooled = Traffic(route.service_url, rate=5, keepalive=True).start()
    try:
        victim = _pod_names(node, route.namespace, selector)[0]
        started = time.monotonic()
        node.kubectl("-n", route.namespace, "delete", "pod", victim, "--wait=false")

        def replaced() -> bool:
            names = _pod_names(node, route.namespace, selector)
            dep = _get(node, route.namespace, "deployment", f"{route.name}-proxy")["status"]
            return victim not in names and dep.get("readyReplicas") == dep.get("replicas")

        wait_for(replaced, timeout=120, what="the proxy pod replaced and Ready", interval=0.5)
        took = time.monotonic() - started
    finally:
        fresh.stop()
        pooled.stop()
    FIGURES["proxy_restart"] = {
        "replaced_seconds": round(took, 1),
        "outcomes": dict(fresh.counts() + pooled.counts()),
    }
    assert fresh.failures() == 0, fresh.counts()
    assert pooled.failures() == 0, pooled.counts()
