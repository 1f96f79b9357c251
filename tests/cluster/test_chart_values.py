"""The chart under several value sets (defaults, namespaced, HA, CRDs off, every knob set): each lints with
``--strict``, renders, and every object it renders (hooks included) passes the real apiserver's
server-side dry-run, without a restricted Pod Security warning. The values schema is strict (a misspelt key
fails), the CRD template is the source CRD, and each knob lands where it should."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from llmroute_dev.binaries import ensure
from llmroute_dev.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "llmroute"
RELEASE_NAMESPACE = "llmroute-system"
EVERY_KNOB: dict[str, Any] = {
    "image": {
        "registry": "registry.example",
        "repository": "mirror/llmroute",
        "digest": "sha256:" + "a" * 64,
    },
    "imagePullSecrets": [{"name": "registry"}],
    "replicaCount": 2,
    "leaderElection": {"leaseDurationSeconds": 15, "renewDeadlineSeconds": 10, "retryPeriodSeconds": 2},
    "crds": {"install": True, "keep": False},
    "watchNamespaces": ["team-a"],
    "scrapeIntervalSeconds": 30,
    "prometheusAuth": {
        "secretName": "prometheus-credentials",
        "username": "llmroute",
        "caKey": "ca.crt",
        "headers": {"X-Scope-OrgID": "team-a"},
    },
    "extraEnv": [{"name": "LLMROUTE_QUERY_TIMEOUT_SECONDS", "value": "20"}],
    "extraArgs": ["--verbose"],
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/llmroute"}},
    "podLabels": {"team": "platform"},
    "podAnnotations": {"example.com/owner": "platform"},
    "priorityClassName": "system-cluster-critical",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                        ]
                    }
                ]
            }
        }
    },
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "llmroute"}},
        }
    ],
    "podSecurityContext": {
        "runAsNonRoot": True,
        "runAsUser": 20000,
        "runAsGroup": 20000,
        "fsGroup": 20000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    },
    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "health"}, "periodSeconds": 5},
    "podDisruptionBudget": {"maxUnavailable": "50%"},
    "uninstallHook": {"resources": {"requests": {"cpu": "10m", "memory": "64Mi"}}},
}
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "ha": {"replicaCount": 3},
    "crds-off": {"crds": {"install": False}, "uninstallHook": {"enabled": False}},
    "every-knob": EVERY_KNOB,
}


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=120)


def _render(values: dict[str, Any], tmp_path: Path) -> str:
    helm = ensure(("helm",))["helm"]
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    lint = _run(str(helm), "lint", str(CHART), "--strict", "-f", str(path), "--namespace", RELEASE_NAMESPACE)
    assert "0 chart(s) failed" in lint.stdout, lint.stdout + lint.stderr
    return _run(
        str(helm), "template", "llmroute", str(CHART), "-n", RELEASE_NAMESPACE, "-f", str(path)
    ).stdout


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def namespaces(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    for name in (RELEASE_NAMESPACE, "team-a", "team-b"):
        labels = {"pod-security.kubernetes.io/warn": "restricted"}
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            core.patch_namespace(name, {"metadata": {"labels": labels}})


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_value_set_renders_what_the_apiserver_accepts(
    name: str, control_plane: ControlPlane, namespaces: None, tmp_path: Path
) -> None:
    rendered = _render(VALUE_SETS[name], tmp_path)
    kubectl = ensure(("kubectl",))["kubectl"]
    applied = subprocess.run(
        [
            str(kubectl),
            f"--kubeconfig={control_plane.kubeconfig}",
            "apply",
            "--server-side",
            "--force-conflicts",
            "--dry-run=server",
            "--field-manager=chart-test",
            "-f",
            "-",
        ],
        input=rendered,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stderr
    assert "PodSecurity" not in applied.stderr, applied.stderr
    kinds = [d["kind"] for d in _docs(rendered)]
    assert len(applied.stdout.strip().splitlines()) == len(kinds), applied.stdout
    assert ("CustomResourceDefinition" in kinds) == (name != "crds-off")


def test_misspelt_values_fail_naming_the_key(tmp_path: Path) -> None:
    helm = ensure(("helm",))["helm"]
    for flag, key in (
        ("iamge.tag=x", "iamge"),
        ("image.tagg=x", "tagg"),
        ("leaderElection.lease=5", "lease"),
    ):
        out = _run(str(helm), "template", "llmroute", str(CHART), "--set", flag, check=False)
        assert out.returncode != 0 and key in out.stderr and "not allowed" in out.stderr, out.stderr
    wrong_type = _run(str(helm), "template", "llmroute", str(CHART), "--set", "replicaCount=two", check=False)
    assert wrong_type.returncode != 0 and "replicaCount" in wrong_type.stderr


def test_a_namespace_listed_twice_fails_naming_the_key(tmp_path: Path) -> None:
    """Each watched namespace gets a Role and RoleBinding of the release's name: a repeat would render two
    objects of one name, which the apiserver refuses halfway through the install."""
    helm = ensure(("helm",))["helm"]
    argv = [str(helm), "template", "llmroute", str(CHART), "--set", "watchNamespaces={team-a,team-a}"]
    out = _run(*argv, check=False)
    assert out.returncode != 0 and "/watchNamespaces" in out.stderr and "equal" in out.stderr, out.stderr
    distinct = _run(str(helm), "template", "llmroute", str(CHART), "--set", "watchNamespaces={team-a,team-b}")
    docs = _docs(distinct.stdout)
    roles = [
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
        for d in docs
        if "Role" in d["kind"]
    ]
    assert len(roles) == len(set(roles)), roles


def test_ha_needs_leader_election(tmp_path: Path) -> None:
    helm = ensure(("helm",))["helm"]
    out = _run(
        str(helm),
        "template",
        "llmroute",
        str(CHART),
        "--set",
        "replicaCount=2,leaderElection.enabled=false",
        check=False,
    )
    assert out.returncode != 0 and "needs leaderElection.enabled" in out.stderr


def test_crd_template_is_the_source_crd_and_keep_is_optional(tmp_path: Path) -> None:
    source = yaml.safe_load((ROOT / "crds" / "llmroute.io_llmroutes.yaml").read_text())
    kept = next(d for d in _docs(_render({}, tmp_path)) if d["kind"] == "CustomResourceDefinition")
    assert kept["spec"] == source["spec"]
    assert kept["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert source["metadata"]["labels"].items() <= kept["metadata"]["labels"].items()
    dropped = next(
        d
        for d in _docs(_render({"crds": {"keep": False}}, tmp_path))
        if d["kind"] == "CustomResourceDefinition"
    )
    assert "annotations" not in dropped["metadata"]


def test_every_knob_lands_in_the_operator_pod(tmp_path: Path) -> None:
    docs = _docs(_render(EVERY_KNOB, tmp_path))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == f"registry.example/mirror/llmroute@sha256:{'a' * 64}"
    assert spec["imagePullSecrets"] == EVERY_KNOB["imagePullSecrets"]
    for key in ("priorityClassName", "nodeSelector", "tolerations", "affinity", "topologySpreadConstraints"):
        assert spec[key] == EVERY_KNOB[key], key
    assert spec["securityContext"] == EVERY_KNOB["podSecurityContext"]
    assert container["securityContext"] == EVERY_KNOB["securityContext"]
    assert container["readinessProbe"] == EVERY_KNOB["readinessProbe"]
    assert pod["metadata"]["labels"]["team"] == "platform"
    # Helm merges a map value into the default map: the chart's scrape annotations stay beside it
    assert EVERY_KNOB["podAnnotations"].items() <= pod["metadata"]["annotations"].items()
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert EVERY_KNOB["extraEnv"][0] in container["env"] and "--verbose" in container["args"]
    assert "--leader-elect-lease-seconds=15" in container["args"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LLMROUTE_SCRAPE_INTERVAL_SECONDS"] == "30"
    assert env["LLMROUTE_PROMETHEUS_USERNAME"] == "llmroute"
    # credentials are files from the Secret, never values in the pod spec
    assert env["LLMROUTE_PROMETHEUS_PASSWORD_FILE"] == "/etc/llmroute/prometheus/password"
    assert env["LLMROUTE_PROMETHEUS_CA_FILE"] == "/etc/llmroute/prometheus/ca.crt"
    assert env["LLMROUTE_PROMETHEUS_HEADERS"] == "X-Scope-OrgID=team-a"
    assert spec["volumes"] == [
        {"name": "prometheus-auth", "secret": {"secretName": "prometheus-credentials", "defaultMode": 0o444}}
    ]
    assert container["volumeMounts"][0]["mountPath"] == "/etc/llmroute/prometheus"
    account = next(d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "llmroute")
    assert account["metadata"]["annotations"] == EVERY_KNOB["serviceAccount"]["annotations"]
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == "50%"
    hook = next(d for d in docs if d["kind"] == "Job")
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    assert "--namespace=team-a" in hook["spec"]["template"]["spec"]["containers"][0]["args"]
    lease_rules = next(
        d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("leader-election")
    )
    assert {"get", "update", "create"} == {v for r in lease_rules["rules"] for v in r["verbs"]}
