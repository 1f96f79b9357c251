"""The node agents: the kubelet (on containerd, cgroup v1, cgroupfs) and kube-proxy (iptables mode).

Every kubelet setting below was needed on these VMs: ``failCgroupV1: false`` (1.35+ refuses cgroup v1
otherwise), ``failSwapOn: false``, no ``resolvConf`` (pods get no DNS), anonymous + ``AlwaysAllow`` on its
own port for ``kubectl logs``, loose eviction and image GC thresholds (a shared disk must not evict the
test's pods), and the bridge address as ``--node-ip``. Its state (``rootDir``, pod logs) lives under the
node's workdir. ``syncFrequency`` keeps the default (1 m): ConfigMap volume latency is measured as a real
cluster has it. kube-proxy changes no sysctls (``--conntrack-*`` at 0) and serves NodePorts only on the
bridge address.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from llmroute_dev.node.network import NODE_IP
from llmroute_dev.procs import Process, free_port

NODE_NAME = "llmroute-node"


def kubelet_config(workdir: Path, runtime_endpoint: str, port: int, healthz_port: int) -> dict[str, object]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "resolvConf": "",
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": runtime_endpoint,
        "podLogsDir": str(workdir / "pod-logs"),
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "registerNode": True,
        "rotateCertificates": False,
        "serializeImagePulls": False,
        "shutdownGracePeriod": "0s",
    }


def start_kubelet(
    bins: dict[str, Path], workdir: Path, log_dir: Path, kubeconfig: Path, runtime_endpoint: str
) -> Process:
    workdir.mkdir(parents=True, exist_ok=True)
    config = kubelet_config(workdir, runtime_endpoint, free_port(), free_port())
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return Process(
        "kubelet",
        [
            str(bins["kubelet"]),
            f"--config={workdir / 'config.yaml'}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={workdir / 'root'}",
            f"--cert-dir={workdir / 'pki'}",
            f"--node-ip={NODE_IP}",
            f"--hostname-override={NODE_NAME}",
            "--v=1",
        ],
        log_dir / "kubelet.log",
    ).start()


def start_kube_proxy(bins: dict[str, Path], log_dir: Path, kubeconfig: Path) -> Process:
    return Process(
        "kube-proxy",
        [
            str(bins["kube-proxy"]),
            f"--kubeconfig={kubeconfig}",
            "--proxy-mode=iptables",
            f"--hostname-override={NODE_NAME}",
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            f"--nodeport-addresses={NODE_IP}/32",
            f"--metrics-bind-address=127.0.0.1:{free_port()}",
            f"--healthz-bind-address=127.0.0.1:{free_port()}",
            "--v=1",
        ],
        log_dir / "kube-proxy.log",
    ).start()


def cleanup_kube_proxy(bins: dict[str, Path], log_dir: Path) -> None:
    """``kube-proxy --cleanup``: remove the iptables rules kube-proxy made (the kubelet's remain)."""
    with (log_dir / "kube-proxy-cleanup.log").open("ab") as log:
        argv = [str(bins["kube-proxy"]), "--cleanup"]
        subprocess.run(argv, stdout=log, stderr=log, check=False, timeout=60)
