"""A local Kubernetes control plane: etcd, kube-apiserver (RBAC on, TokenRequest able) and
kube-controller-manager (Deployments → ReplicaSets → Pods, garbage collection, ServiceAccounts) on loopback.

Pods stay Pending: there is no scheduler or kubelet, and none is needed to test an operator.
"""

from __future__ import annotations

import secrets
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from llmroute_dev.binaries import ensure
from llmroute_dev.procs import Process, free_port, wait_for

ADMIN_USER = "llmroute-admin"
CONTROLLERS = (
    "deployment-controller,replicaset-controller,garbage-collector-controller,namespace-controller,"
    "serviceaccount-controller,serviceaccount-token-controller,disruption-controller"
)


@dataclass
class ControlPlane:
    workdir: Path
    with_controller_manager: bool = True
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    etcd_port: int = 0
    apiserver_port: int = 0
    processes: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "certs" / "apiserver.crt"

    def start(self) -> ControlPlane:
        bins = ensure()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_etcd(bins["etcd"])
            self._start_apiserver(bins["kube-apiserver"])
            self.write_kubeconfig(self.kubeconfig, token=self.admin_token, user=ADMIN_USER)
            if self.with_controller_manager:
                self._start_controller_manager(bins["kube-controller-manager"])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver on the same port (etcd keeps the data)."""
        apiserver = next(p for p in self.processes if p.name == "kube-apiserver")
        apiserver.stop()
        apiserver.start()
        self._wait_apiserver(apiserver)

    def logs(self) -> dict[str, str]:
        return {p.name: p.tail(60) for p in self.processes}

    # --- internals -------------------------------------------------------------------------------
    def _start_etcd(self, binary: Path) -> None:
        self.etcd_port, peer = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{peer}"
        etcd = Process(
            "etcd",
            [
                str(binary),
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            self.workdir / "logs" / "etcd.log",
        ).start()
        self.processes.append(etcd)

        def healthy() -> bool:
            etcd.check_alive()
            with urllib.request.urlopen(f"{client_url}/health", timeout=2) as resp:
                return b'"true"' in resp.read()

        wait_for(healthy, timeout=30, what="etcd")

    def _start_apiserver(self, binary: Path) -> None:
        certs = self.workdir / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        sa_key, sa_pub = certs / "sa.key", certs / "sa.pub"
        if not sa_key.exists():
            genrsa = ["openssl", "genrsa", "-out", str(sa_key), "2048"]
            subprocess.run(genrsa, check=True, capture_output=True)
            subprocess.run(
                ["openssl", "rsa", "-in", str(sa_key), "-pubout", "-out", str(sa_pub)],
                check=True,
                capture_output=True,
            )
        tokens = certs / "tokens.csv"
        tokens.write_text(f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        tokens.chmod(0o600)
        self.apiserver_port = self.apiserver_port or free_port()
        apiserver = Process(
            "kube-apiserver",
            [
                str(binary),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={certs}",
                "--authorization-mode=RBAC",
                f"--token-auth-file={tokens}",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/24",
                "--disable-admission-plugins=ServiceAccount",
                "--enable-priority-and-fairness=false",
                "--storage-media-type=application/json",
                "--v=1",
            ],
            self.workdir / "logs" / "kube-apiserver.log",
        ).start()
        self.processes.append(apiserver)
        self._wait_apiserver(apiserver)

    def _wait_apiserver(self, apiserver: Process) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

        def ready() -> bool:
            apiserver.check_alive()
            req = urllib.request.Request(
                f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"}
            )
            with urllib.request.urlopen(req, timeout=2, context=ctx) as resp:
                return bool(resp.status == 200)

        wait_for(ready, timeout=90, what="kube-apiserver", interval=0.2)

    def _start_controller_manager(self, binary: Path) -> None:
        kcm = Process(
            "kube-controller-manager",
            [
                str(binary),
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={CONTROLLERS}",
                f"--service-account-private-key-file={self.workdir / 'certs' / 'sa.key'}",
                f"--root-ca-file={self.ca_file}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--concurrent-gc-syncs=5",
                "--v=1",
            ],
            self.workdir / "logs" / "kube-controller-manager.log",
        ).start()
        self.processes.append(kcm)
        kcm.check_alive()

    def write_kubeconfig(self, path: Path, *, token: str, user: str, namespace: str = "default") -> Path:
        """A kubeconfig for ``token`` (admin by default; use a minted ServiceAccount token for RBAC tests)."""
        cluster = {"server": self.url, "certificate-authority": str(self.ca_file)}
        context = {"cluster": "llmroute-local", "user": user, "namespace": namespace}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "llmroute-local", "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": context}],
            "current-context": user,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path
