"""The chart's monitoring objects on the real apiserver: with every monitoring value on, the whole chart
applies cleanly (server-side, strict field validation) once the Prometheus Operator's CRDs are installed.
Those CRDs are generated at test time with controller-gen from the Prometheus Operator's Go API types
(``hack/build-monitoring.sh crds``), never copied into this repository. The PodMonitor selects exactly the
pods and port the operator renders for a proxy."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from llmroute.render.workload import build_deployment
from llmroute.spec.route import LLMRoute
from llmroute_dev.binaries import ensure
from llmroute_dev.controlplane import ControlPlane
from llmroute_dev.monitoringtools import prometheus_operator_crds
from llmroute_dev.session import install_crd

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "llmroute"
ALL_ON = [
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.serviceMonitor.additionalLabels.release=kube-prometheus-stack",
    "monitoring.podMonitor.enabled=true",
    "monitoring.podMonitor.additionalLabels.release=kube-prometheus-stack",
    "monitoring.podMonitor.interval=15s",
    "monitoring.podMonitor.scrapeTimeout=5s",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.prometheusRule.additionalLabels.release=kube-prometheus-stack",
    "monitoring.dashboards.enabled=true",
    "monitoring.dashboards.annotations.grafana_folder=llmroute",
]


@pytest.fixture(scope="session")
def monitoring_crds(control_plane: ControlPlane) -> None:
    for path in prometheus_operator_crds():
        install_crd(control_plane.kubeconfig, path)


def _render(namespace: str, *settings: str) -> str:
    helm = ensure(("helm",))["helm"]
    args = [str(helm), "template", "llmroute", str(CHART), "--namespace", namespace]
    for setting in settings:
        args += ["--set", setting]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def _kinds(text: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(text) if d}


def _apply(cp: ControlPlane, manifest: str, *extra: str) -> subprocess.CompletedProcess[str]:
    kubectl = ensure(("kubectl",))["kubectl"]
    return subprocess.run(
        [
            str(kubectl),
            f"--kubeconfig={cp.kubeconfig}",
            "apply",
            "--server-side",
            "--field-manager=test",
            *extra,
            "-f",
            "-",
        ],
        input=manifest,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_monitoring_is_off_by_default() -> None:
    kinds = _kinds(_render("llmroute-system"))
    assert not {"ServiceMonitor", "PodMonitor", "PrometheusRule"} & set(kinds)
    assert all(not k.endswith("dashboards") for k in (d["metadata"]["name"] for d in kinds.values()))


def test_whole_chart_with_monitoring_on_applies_cleanly(
    control_plane: ControlPlane, monitoring_crds: None, namespace: str
) -> None:
    manifest = _render(namespace, *ALL_ON)
    kinds = _kinds(manifest)
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"} <= set(kinds)
    done = _apply(control_plane, manifest, "--dry-run=server")
    assert done.returncode == 0, done.stderr
    applied = {line.split("/")[0].split(".")[0] for line in done.stdout.splitlines() if "/" in line}
    assert {"servicemonitor", "podmonitor", "prometheusrule", "configmap"} <= applied, done.stdout
    # a typo in a template would be refused, not dropped: the CRDs' schemas are enforced
    broken = manifest.replace("podMetricsEndpoints:", "podMetricEndpoints:")
    refused = _apply(control_plane, broken, "--dry-run=server")
    assert refused.returncode != 0 and "podMetricEndpoints" in refused.stderr


def test_monitoring_objects_are_created_and_select_the_proxies(
    control_plane: ControlPlane, api_client: client.ApiClient, monitoring_crds: None, namespace: str
) -> None:
    kinds = _kinds(_render(namespace, *ALL_ON))
    objects = [kinds[k] for k in ("ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap")]
    done = _apply(
        control_plane, "\n---\n".join(yaml.safe_dump(o) for o in objects), f"--namespace={namespace}"
    )
    assert done.returncode == 0, done.stderr

    custom = client.CustomObjectsApi(api_client)
    pod_monitor = custom.list_namespaced_custom_object(
        "monitoring.coreos.com", "v1", namespace, "podmonitors"
    )
    (monitor,) = pod_monitor["items"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("15s", "5s")
    assert monitor["spec"]["namespaceSelector"] == {"any": True}

    # the pods and the port the operator renders for a proxy are the ones the PodMonitor selects
    route = LLMRoute.from_object(
        {
            "apiVersion": "llmroute.io/v1alpha1",
            "kind": "LLMRoute",
            "metadata": {"name": "chat", "namespace": "team-a", "uid": "u"},
            "spec": {
                "upstreams": [{"name": "a", "url": "http://a.example/v1", "model": "m"}],
                "rateLimits": {"identity": {"type": "Unauthenticated"}},
            },
        }
    )
    template = build_deployment(route, 2)["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    ports = [p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])]
    assert endpoint["port"] in ports

    service_monitor = custom.list_namespaced_custom_object(
        "monitoring.coreos.com", "v1", namespace, "servicemonitors"
    )["items"][0]
    service = _kinds(_render(namespace))["Service"]  # the operator's metrics Service
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service_monitor["spec"]["endpoints"][0]["port"] in [p["name"] for p in service["spec"]["ports"]]

    rule = custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", namespace, "prometheusrules")
    alerts = [r["alert"] for g in rule["items"][0]["spec"]["groups"] for r in g["rules"]]
    source = yaml.safe_load((ROOT / "monitoring" / "rules" / "llmroute.rules.yaml").read_text())
    assert alerts == [r["alert"] for g in source["groups"] for r in g["rules"]]

    dashboards = client.CoreV1Api(api_client).read_namespaced_config_map("llmroute-dashboards", namespace)
    assert dashboards.metadata.labels["grafana_dashboard"] == "1"
    assert dashboards.metadata.annotations == {"grafana_folder": "llmroute"}
    shipped = json.loads((ROOT / "monitoring" / "dashboards" / "llmroute.json").read_text())
    assert json.loads(dashboards.data["llmroute.json"]) == shipped


def test_pod_monitor_follows_watch_namespaces_and_the_port_value() -> None:
    kinds = _kinds(
        _render(
            "llmroute-system",
            "monitoring.podMonitor.enabled=true",
            "monitoring.podMonitor.port=metrics",
            "watchNamespaces={team-a,team-b}",
        )
    )
    spec = kinds["PodMonitor"]["spec"]
    assert spec["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    assert spec["podMetricsEndpoints"][0]["port"] == "metrics"
