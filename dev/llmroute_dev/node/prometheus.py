"""A real Prometheus on the node's bridge address that finds its targets the way an in-cluster
Prometheus does: ``kubernetes_sd_configs`` (role ``pod``) through the apiserver, keeping the pods annotated
``prometheus.io/scrape: "true"`` and scraping ``prometheus.io/port`` and ``prometheus.io/path``; and the
containers' CPU and memory from each node's kubelet (cAdvisor, ``/metrics/cadvisor``, role ``node``), as the
kube-prometheus-stack's kubelet job does, for the dashboard's resource panels. Pods (the operator) reach
it at :attr:`url`; the host can too. The binary is Prometheus 3 built by
``hack/build-monitoring.sh`` with the Kubernetes discovery compiled in (Debian's 2.42 package has none).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from llmroute_dev.node.network import NODE_IP
from llmroute_dev.procs import Process, free_port, wait_for

ANNOTATION = "__meta_kubernetes_pod_annotation_prometheus_io_"
CADVISOR_INTERVAL = "10s"  # a few thousand series per kubelet: no need for the proxies' 2 s


def _discovery(role: str, api_url: str, ca_file: Path, token_file: Path) -> dict[str, Any]:
    """A ``kubernetes_sd_configs`` entry: the ``role`` objects, listed through the apiserver."""
    return {
        "role": role,
        "api_server": api_url,
        "tls_config": {"ca_file": str(ca_file)},
        "authorization": {"credentials_file": str(token_file)},
    }


def scrape_config(api_url: str, ca_file: Path, token_file: Path, interval: str) -> dict[str, Any]:
    return {
        "job_name": "kubernetes-pods",
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "kubernetes_sd_configs": [_discovery("pod", api_url, ca_file, token_file)],
        "relabel_configs": [
            {"source_labels": [f"{ANNOTATION}scrape"], "action": "keep", "regex": "true"},
            {"source_labels": ["__meta_kubernetes_pod_phase"], "action": "keep", "regex": "Running"},
            {"source_labels": [f"{ANNOTATION}path"], "regex": "(.+)", "target_label": "__metrics_path__"},
            {
                "source_labels": ["__address__", f"{ANNOTATION}port"],
                "regex": r"([^:]+)(?::\d+)?;(\d+)",
                "replacement": "$1:$2",
                "target_label": "__address__",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }


def cadvisor_config(api_url: str, ca_file: Path, token_file: Path, interval: str) -> dict[str, Any]:
    """Every node's kubelet at the address and port the node reports, ``/metrics/cadvisor`` over HTTPS.
    The kubelet serves a self-signed certificate here (as kubeadm's do unless serving certificates are
    rotated), so its certificate is not verified, as in kube-prometheus-stack's default kubelet job."""
    return {
        "job_name": "kubelet-cadvisor",
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "scheme": "https",
        "metrics_path": "/metrics/cadvisor",
        "tls_config": {"insecure_skip_verify": True},
        "authorization": {"credentials_file": str(token_file)},
        "kubernetes_sd_configs": [_discovery("node", api_url, ca_file, token_file)],
    }


class NodePrometheus:
    def __init__(
        self, binary: Path, workdir: Path, api_url: str, ca_file: Path, token: str, interval_seconds: int = 2
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.api_url = api_url
        self.ca_file = ca_file
        self.token = token
        self.interval_seconds = interval_seconds  # the operator is told it (chart: scrapeIntervalSeconds)
        self.interval = f"{interval_seconds}s"
        self.port = 0
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{NODE_IP}:{self.port}"

    def start(self) -> NodePrometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        token_file = self.workdir / "token"
        token_file.write_text(self.token)
        token_file.chmod(0o600)
        config = {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "scrape_configs": [
                scrape_config(self.api_url, self.ca_file, token_file, self.interval),
                cadvisor_config(self.api_url, self.ca_file, token_file, CADVISOR_INTERVAL),
            ],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.process = Process(
            "prometheus",
            [
                str(self.binary),
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address={NODE_IP}:{self.port}",
                "--query.lookback-delta=1m",
            ],
            self.workdir / "prometheus.log",
        ).start()
        proc = self.process

        def ready() -> bool:
            proc.check_alive()
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)

        wait_for(ready, timeout=60, what="prometheus")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus {path} failed: {body}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=promql)["result"]
        return result

    def active_targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return targets
