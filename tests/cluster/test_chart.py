"""The Helm chart: lints, renders the checked-in install manifest exactly, installs on the real apiserver,
and runs under the restricted Pod Security Standard with least-privilege RBAC."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from typing import Any

import yaml

from llmroute_dev.binaries import ensure

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "llmroute"


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "hack" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _helm(*args: str) -> str:
    helm = ensure(("helm",))["helm"]
    return subprocess.run([str(helm), *args], check=True, capture_output=True, text=True).stdout


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_chart_lints() -> None:
    out = _helm("lint", str(CHART), "--strict")
    assert "0 chart(s) failed" in out


def test_install_manifest_is_what_the_chart_renders() -> None:
    assert (ROOT / "manifests" / "install.yaml").read_text() == _generator().render_install(
        ensure(("helm",))["helm"]
    )


def test_operator_pod_is_restricted() -> None:
    docs = _docs(_helm("template", "llmroute", str(CHART), "--namespace", "llmroute-system"))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert not any("KEY" in e["name"] or "TOKEN" in e["name"] for e in container["env"])


def test_rbac_is_least_privilege() -> None:
    docs = _docs(_helm("template", "llmroute", str(CHART), "--namespace", "llmroute-system"))
    rules = [r for d in docs if d["kind"] in ("ClusterRole", "Role") for r in d["rules"]]
    granted = {
        (g, res, v) for r in rules for g in r["apiGroups"] for res in r["resources"] for v in r["verbs"]
    }
    assert not any("*" in item for item in granted)
    assert not any(res == "secrets" for _, res, _ in granted), "the operator never reads Secrets"
    assert not any(
        v in ("delete", "deletecollection", "escalate", "bind", "impersonate") for *_, v in granted
    )
    assert ("apps", "deployments/scale", "patch") in granted


def test_namespaced_install_uses_roles_only() -> None:
    docs = _docs(
        _helm(
            "template",
            "llmroute",
            str(CHART),
            "--namespace",
            "llmroute-system",
            "--set",
            "watchNamespaces={team-a,team-b}",
        )
    )
    roles = [d for d in docs if d["kind"] == "Role"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    cluster_roles = [d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole"]
    assert cluster_roles == ["llmroute-discovery"]
    args = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert "--namespace=team-a" in args and "--all-namespaces" not in args
