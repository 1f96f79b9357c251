"""The chart's operator runs in-cluster and turns ``minimal.yaml`` into Ready proxy pods that serve through
their Service's ClusterIP (kube-proxy) from the fake upstream on the bridge."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from llmroute import __version__
from llmroute_dev.node.node import Node
from tests.node.conftest import CLIENT_KEY, RELEASE_NAMESPACE, Installed, Route

OPERATOR = "app.kubernetes.io/name=llmroute"


def _json(node: Node, *args: str) -> Any:
    return json.loads(node.kubectl(*args, "-o", "json"))


def test_operator_runs_in_cluster_under_the_charts_service_account(node: Node, chart: Installed) -> None:
    pods = _json(node, "-n", RELEASE_NAMESPACE, "get", "pods", "-l", OPERATOR)["items"]
    assert isinstance(pods, list) and len(pods) == 1
    pod = pods[0]
    assert pod["spec"]["serviceAccountName"] == "llmroute"
    assert pod["spec"]["containers"][0]["image"] == f"ghcr.io/llmroute/llmroute:{__version__}"
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True"
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 0 and "running" in status["state"]
    # the token it runs with is the chart's ServiceAccount's, mounted by the ServiceAccount admission plugin
    assert any(v.get("projected") for v in pod["spec"]["volumes"]), "no in-cluster token volume"
    # the image's user, not root: the chart's runAsUser and the Dockerfile's USER agree
    uid = node.kubectl(
        "-n",
        RELEASE_NAMESPACE,
        "exec",
        pod["metadata"]["name"],
        "--",
        "python3",
        "-c",
        "import os; print(os.getuid(), os.getgid())",
    )
    assert uid == "10001 10001"


def test_minimal_route_gives_ready_proxies_behind_a_service(node: Node, route: Route) -> None:
    llmr = _json(node, "-n", route.namespace, "get", "llmroute", route.name)
    conditions = {c["type"]: c for c in llmr["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "True", conditions["Ready"]
    slices = _json(
        node,
        "-n",
        route.namespace,
        "get",
        "endpointslices",
        "-l",
        f"kubernetes.io/service-name={route.name}-proxy",
    )["items"]
    ready = [e for s in slices for e in s["endpoints"] or [] if e["conditions"].get("ready")]
    assert ready, slices
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}  # a team key
    request = urllib.request.Request(f"{route.service_url}/v1/chat/completions", body, headers)
    with urllib.request.urlopen(request, timeout=10) as resp:
        answer = json.loads(resp.read())
    assert answer["upstream"] == "fake"  # answered by the fake upstream through the proxy pod
    assert answer["choices"][0]["message"]["content"]
