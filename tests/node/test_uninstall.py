"""``helm uninstall`` with routes still there does not trap them: the pre-delete hook stops the operator and
removes its finalizer, the route and its proxy stay and keep serving (``crds.keep``), and deleting the
route afterwards is immediate, its proxy garbage-collected."""

from __future__ import annotations

import json
import time
import urllib.request

from llmroute_dev.node.node import Node
from llmroute_dev.procs import wait_for
from tests.node.conftest import CLIENT_KEY, FIGURES, RELEASE_NAMESPACE, Route, helm

FINALIZER = "llmroute.io/finalizer"


def _chat(url: str) -> int:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}
    request = urllib.request.Request(f"{url}/v1/chat/completions", body, headers)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return int(resp.status)


def test_uninstall_releases_routes_which_keep_serving_and_delete_at_once(node: Node, route: Route) -> None:
    finalizers = node.kubectl(
        "-n", route.namespace, "get", "llmroute", route.name, "-o", "jsonpath={.metadata.finalizers}"
    )
    assert FINALIZER in finalizers  # what would trap the route without an operator
    started = time.monotonic()
    helm(node, "uninstall", "llmroute", "--namespace", RELEASE_NAMESPACE, "--wait", "--timeout=3m")
    uninstalled = time.monotonic() - started
    operators = node.kubectl("-n", RELEASE_NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/name=llmroute")
    assert operators == "", operators
    assert node.kubectl("-n", RELEASE_NAMESPACE, "get", "jobs", "-o", "name") == ""  # hook removed itself
    # the CRD (crds.keep) and the route stay, without the finalizer, and the proxy keeps serving
    assert node.kubectl("get", "crd", "llmroutes.llmroute.io", "-o", "name")
    left = node.kubectl(
        "-n", route.namespace, "get", "llmroute", route.name, "-o", "jsonpath={.metadata.finalizers}"
    )
    assert FINALIZER not in left
    assert _chat(route.service_url) == 200
    started = time.monotonic()
    node.kubectl("-n", route.namespace, "delete", "llmroute", route.name, "--timeout=30s")
    deleted = time.monotonic() - started

    def proxy_gone() -> bool:
        out = node.kubectl("-n", route.namespace, "get", "deployment", f"{route.name}-proxy", check=False)
        return out == ""

    wait_for(proxy_gone, timeout=90, what="the proxy Deployment garbage-collected", interval=0.5)
    FIGURES["uninstall"] = {
        "helm_uninstall_seconds": round(uninstalled, 1),
        "route_delete_seconds": round(deleted, 1),
        "proxy_collected_seconds": round(time.monotonic() - started, 1),
    }
