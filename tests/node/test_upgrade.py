"""``helm upgrade`` from the previous chart (its CRD in ``crds/``, which Helm never upgrades) to this one (the
CRD a template) changes the CRD on the node: a route using the new proxy placement fields is refused before
and accepted after, the existing route survives and is reconciled by the new operator (its
PodDisruptionBudget appears). Then an uninstall with ``crds.keep=false`` removes the CRD and every route
without anything left Terminating.

The previous chart comes from git history (the commit below, the chart as first published); it runs the
image built from this tree, which needs RBAC the old chart lacks (PodDisruptionBudgets), so the route is
only expected Ready after the upgrade.
"""

from __future__ import annotations

import copy
import json
import subprocess
import tarfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmroute_dev.node.node import Node
from llmroute_dev.node.prometheus import NodePrometheus
from llmroute_dev.procs import wait_for
from tests.node.conftest import FIGURES, RELEASE_NAMESPACE, ROOT, Upstream, helm, route_manifest

PREVIOUS_CHART_COMMIT = "d8cba15462935951def4515ccc37f8df9e61ddc1"  # crds/ still in the chart
CRD = "llmroutes.llmroute.io"
NAMESPACE = "llm-upgrade"
TOLERATION = [{"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"}]


@pytest.fixture(scope="module")
def previous_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("previous-chart")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS_CHART_COMMIT, "helm/llmroute"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(f"the previous chart is not in this checkout's history: {archive.stderr.decode()[:200]}")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(out, filter="data")
    chart = out / "helm" / "llmroute"
    assert (chart / "crds").is_dir(), "the previous chart should carry its CRD in crds/"
    return chart


def _template_fields(node: Node) -> set[str]:
    crd = json.loads(node.kubectl("get", "crd", CRD, "-o", "json"))
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return set(spec["properties"]["proxy"]["properties"]["template"]["properties"])


def _route(upstream: Upstream, name: str, **template: Any) -> str:
    manifest = route_manifest(upstream.url)
    manifest["metadata"] |= {"name": name, "namespace": NAMESPACE}
    if template:
        manifest["spec"]["proxy"] = {"template": copy.deepcopy(template)}
    return yaml.safe_dump(manifest)


def _ready(node: Node, name: str) -> bool:
    out = node.kubectl(
        "-n",
        NAMESPACE,
        "get",
        "llmroute",
        name,
        "-o",
        "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
    )
    return out == "True"


def test_upgrade_from_the_previous_chart_upgrades_the_crd(
    node: Node, previous_chart: Path, node_prometheus: NodePrometheus, fake_upstream: Upstream
) -> None:
    # a clean slate: the earlier modules leave the kept CRD (and no route) behind
    node.kubectl("delete", "crd", CRD, "--ignore-not-found", "--timeout=60s")
    helm(
        node,
        "install",
        "llmroute",
        str(previous_chart),
        "--namespace",
        RELEASE_NAMESPACE,
        "--set",
        f"prometheusUrl={node_prometheus.url}",
        "--wait",
        "--timeout=3m",
    )
    before = _template_fields(node)
    assert "tolerations" not in before
    node.kubectl("create", "namespace", NAMESPACE)
    node.kubectl(
        "-n", NAMESPACE, "create", "secret", "generic", "openai-credentials", "--from-literal=api-key=sk-test"
    )
    node.kubectl("apply", "-f", "-", input=_route(fake_upstream, "chat"))
    wait_for(
        lambda: (
            node.kubectl("-n", NAMESPACE, "get", "deployment", "chat-proxy", "-o", "name", check=False) != ""
        ),
        timeout=120,
        what="the old release's operator creating the proxy",
        interval=0.5,
    )
    refused = subprocess.run(
        [str(node.bins["kubectl"]), f"--kubeconfig={node.kubeconfig}", "apply", "-f", "-"],
        input=_route(fake_upstream, "placed", tolerations=TOLERATION),
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "tolerations" in refused.stderr, refused.stderr

    upgrade = [
        "upgrade",
        "llmroute",
        str(ROOT / "helm" / "llmroute"),
        "--namespace",
        RELEASE_NAMESPACE,
        "--reset-then-reuse-values",
        "--wait",
        "--timeout=3m",
    ]
    started = time.monotonic()
    plain = subprocess.run(
        [str(node.bins["helm"]), f"--kubeconfig={node.kubeconfig}", *upgrade], capture_output=True, text=True
    )
    if plain.returncode != 0:  # Helm will not adopt the CRD it installed from crds/ without being told
        helm(node, *upgrade, "--take-ownership")
    upgraded = time.monotonic() - started
    after = _template_fields(node)
    assert {"tolerations", "affinity", "topologySpreadConstraints", "podDisruptionBudget"} <= after
    node.kubectl("apply", "-f", "-", input=_route(fake_upstream, "placed", tolerations=TOLERATION))
    # the new operator reconciles the old route: Ready, with its PodDisruptionBudget
    wait_for(
        lambda: _ready(node, "chat"), timeout=120, what="the old route Ready under the new chart", interval=1
    )
    assert node.kubectl("-n", NAMESPACE, "get", "pdb", "chat-proxy", "-o", "name") != ""
    wait_for(
        lambda: (
            node.kubectl("-n", NAMESPACE, "get", "deployment", "placed-proxy", "-o", "name", check=False)
            != ""
        ),
        timeout=60,
        what="the placed route's proxy",
        interval=0.5,
    )
    placed = json.loads(node.kubectl("-n", NAMESPACE, "get", "deployment", "placed-proxy", "-o", "json"))
    assert placed["spec"]["template"]["spec"]["tolerations"] == TOLERATION
    FIGURES["upgrade"] = {
        "plain_helm_upgrade": "ok" if plain.returncode == 0 else plain.stderr.strip().splitlines()[-1][:300],
        "upgrade_seconds": round(upgraded, 1),
        "crd_template_fields_added": sorted(after - before),
    }


def test_uninstall_without_keep_removes_the_crd_and_routes_leaving_nothing_terminating(node: Node) -> None:
    helm(
        node,
        "upgrade",
        "llmroute",
        str(ROOT / "helm" / "llmroute"),
        "--namespace",
        RELEASE_NAMESPACE,
        "--reuse-values",
        "--set",
        "crds.keep=false",
        "--wait",
        "--timeout=3m",
    )
    started = time.monotonic()
    helm(node, "uninstall", "llmroute", "--namespace", RELEASE_NAMESPACE, "--wait", "--timeout=3m")

    def gone() -> bool:
        crd = node.kubectl("get", "crd", CRD, "-o", "name", check=False)
        proxies = node.kubectl("-n", NAMESPACE, "get", "deployments", "-o", "name", check=False)
        return crd == "" and proxies == ""

    wait_for(gone, timeout=120, what="the CRD, the routes and their proxies deleted", interval=1)
    FIGURES["uninstall_without_keep_seconds"] = round(time.monotonic() - started, 1)
    node.kubectl("delete", "namespace", NAMESPACE, "--wait=false")
