"""The node's control plane: etcd, kube-apiserver, kube-controller-manager and kube-scheduler.

Unlike the loopback control plane of the cluster tier, kube-apiserver binds and advertises on the bridge
address so pods reach it through the ``kubernetes`` Service, keeps the ServiceAccount admission plugin (pods
get in-cluster tokens) and reconciles that Service's endpoints; kube-controller-manager runs every default
controller (node lifecycle removes the ``not-ready`` taint; endpoints; ServiceAccount tokens) and publishes
the apiserver's certificate as ``kube-root-ca.crt``.
"""

from __future__ import annotations

import secrets
import ssl
import subprocess
import urllib.request
from pathlib import Path

import yaml

from llmroute_dev.node.network import NODE_IP, POD_CIDR, SERVICE_CIDR
from llmroute_dev.procs import Process, free_port, wait_for

ADMIN_USER = "llmroute-node-admin"


class ControlPlane:
    """Control-plane processes for the node; ``bins`` maps binary names to paths."""

    def __init__(self, workdir: Path, log_dir: Path, bins: dict[str, Path]) -> None:
        self.workdir = workdir
        self.log_dir = log_dir
        self.bins = bins
        self.admin_token = secrets.token_urlsafe(32)
        self.port = 0
        self.processes: list[Process] = []

    @property
    def url(self) -> str:
        return f"https://{NODE_IP}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    def start(self) -> ControlPlane:
        etcd_url = self._start_etcd()
        self._start_apiserver(etcd_url)
        self._write_kubeconfig()
        self._start(
            "kube-controller-manager",
            f"--kubeconfig={self.kubeconfig}",
            f"--service-account-private-key-file={self.workdir / 'certs' / 'sa.key'}",
            f"--root-ca-file={self.ca_file}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--cluster-cidr={POD_CIDR}",
            "--allocate-node-cidrs=false",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--node-monitor-grace-period=20s",
            "--v=1",
        )
        self._start(
            "kube-scheduler",
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            "--v=1",
        )
        return self

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def stop_controllers(self) -> None:
        """Stop kube-controller-manager and kube-scheduler (nothing recreates deleted pods afterwards)."""
        for proc in [p for p in self.processes if p.name in ("kube-controller-manager", "kube-scheduler")]:
            proc.stop()
            self.processes.remove(proc)

    def logs(self) -> dict[str, str]:
        return {p.name: p.tail(40) for p in self.processes}

    def _start(self, name: str, *args: str) -> Process:
        proc = Process(name, [str(self.bins[name]), *args], self.log_dir / f"{name}.log").start()
        self.processes.append(proc)
        return proc

    def _start_etcd(self) -> str:
        port, peer = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer}"
        etcd = self._start(
            "etcd",
            "--name=node",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=node={peer_url}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        )

        def healthy() -> bool:
            etcd.check_alive()
            with urllib.request.urlopen(f"{client_url}/health", timeout=2) as resp:
                return b'"true"' in resp.read()

        wait_for(healthy, timeout=30, what="etcd")
        return client_url

    def _start_apiserver(self, etcd_url: str) -> None:
        certs = self.workdir / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        sa_key, sa_pub = certs / "sa.key", certs / "sa.pub"
        subprocess.run(["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True)
        subprocess.run(
            ["openssl", "rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub)],
            check=True,
            capture_output=True,
        )
        tokens = certs / "tokens.csv"
        tokens.write_text(f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        tokens.chmod(0o600)
        self.port = free_port()
        issuer = "https://kubernetes.default.svc.cluster.local"
        apiserver = self._start(
            "kube-apiserver",
            f"--etcd-servers={etcd_url}",
            f"--bind-address={NODE_IP}",
            f"--advertise-address={NODE_IP}",
            f"--secure-port={self.port}",
            f"--cert-dir={certs}",
            "--authorization-mode=Node,RBAC",
            f"--token-auth-file={tokens}",
            f"--service-account-key-file={sa_pub}",
            f"--service-account-signing-key-file={sa_key}",
            f"--service-account-issuer={issuer}",
            f"--api-audiences={issuer}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--enable-priority-and-fairness=false",
            "--v=1",
        )
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

        def ready() -> bool:
            apiserver.check_alive()
            request = urllib.request.Request(
                f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"}
            )
            with urllib.request.urlopen(request, timeout=2, context=ctx) as resp:
                return bool(resp.status == 200)

        wait_for(ready, timeout=90, what="kube-apiserver", interval=0.2)

    def _write_kubeconfig(self) -> None:
        cluster = {"server": self.url, "certificate-authority": str(self.ca_file)}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "llmroute-node", "cluster": cluster}],
            "users": [{"name": ADMIN_USER, "user": {"token": self.admin_token}}],
            "contexts": [{"name": ADMIN_USER, "context": {"cluster": "llmroute-node", "user": ADMIN_USER}}],
            "current-context": ADMIN_USER,
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)
