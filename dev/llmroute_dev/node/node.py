"""Start a whole single-node cluster on this machine and tear it down completely.

Order up: host snapshot → bridge + Service route → containerd (+ the pause and llmroute images) → etcd,
kube-apiserver, kube-controller-manager, kube-scheduler → kubelet, kube-proxy → the node is Ready and the
``default`` ServiceAccount exists. Order down (also after a failed start): controllers stop so nothing is
recreated, every pod is deleted through the API and the kubelet tears it down (volumes unmounted, CNI
released), then kubelet, kube-proxy (+ ``--cleanup``), containerd and its shims, the control plane, and
finally :meth:`HostSnapshot.restore` (bridge, route, iptables chains, netns, cgroups, sysctls).

A state file (``STATE_FILE``) lets a later run sweep what a killed run left behind (:func:`sweep`).
Needs root; run it under ``flock /tmp/llmroute-heavy.lock``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from llmroute_dev.binaries import ensure
from llmroute_dev.monitoringtools import prometheus_binary
from llmroute_dev.node.cluster import ControlPlane
from llmroute_dev.node.image import BuiltImage, pause_archive
from llmroute_dev.node.kubelet import NODE_NAME, cleanup_kube_proxy, start_kube_proxy, start_kubelet
from llmroute_dev.node.network import NODE_IP, HostSnapshot, add_bridge
from llmroute_dev.node.runtime import PAUSE_IMAGE, Containerd
from llmroute_dev.procs import Process, wait_for

WORKDIR = Path("/tmp/llmroute-node")  # short: containerd's socket path must stay under 108 bytes
STATE_FILE = Path("/run/llmroute-node.json")
# where the kubelet's built-in cAdvisor finds containerd (not configurable): without it, cAdvisor sees the
# pods' cgroups but not their containers, and /metrics/cadvisor has no `container` label
CADVISOR_CONTAINERD = Path("/run/containerd/containerd.sock")
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
BINARIES = (*CONTROL_PLANE, "kubelet", "kube-proxy", "kubectl", "helm", "pause")


class Node:
    """A running node; :attr:`kubeconfig` is an admin kubeconfig, :attr:`node_ip` the bridge address."""

    node_ip = NODE_IP
    name = NODE_NAME

    def __init__(self, images: tuple[BuiltImage, ...] = (), workdir: Path = WORKDIR) -> None:
        self.images = images
        self.workdir = workdir
        self.log_dir = workdir / "logs"
        self.bins: dict[str, Path] = {}
        self.snapshot: HostSnapshot | None = None
        self.containerd: Containerd | None = None
        self.control_plane: ControlPlane | None = None
        self.agents: list[Process] = []
        self.timings: dict[str, float] = {}

    @property
    def kubeconfig(self) -> Path:
        assert self.control_plane is not None
        return self.control_plane.kubeconfig

    def start(self) -> Node:
        if os.geteuid() != 0:
            raise PermissionError("the node needs root (bridge, iptables, containerd)")
        sweep()
        t0 = time.monotonic()
        self.bins = ensure(BINARIES) | {"prometheus": prometheus_binary("prometheus")}
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.log_dir.mkdir(parents=True)
        self.snapshot = HostSnapshot.take()
        self._save_state()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.timings["start_seconds"] = time.monotonic() - t0
        return self

    def _start(self) -> None:
        t = time.monotonic()
        add_bridge()
        self.containerd = Containerd(self.workdir / "containerd", self.log_dir).start()
        self._save_state()
        if not CADVISOR_CONTAINERD.exists() and not CADVISOR_CONTAINERD.is_symlink():
            CADVISOR_CONTAINERD.parent.mkdir(parents=True, exist_ok=True)
            CADVISOR_CONTAINERD.symlink_to(self.containerd.socket)
        self.containerd.import_image(pause_archive(self.bins["pause"], PAUSE_IMAGE))
        for image in self.images:
            self.containerd.import_image(image.archive)
        self.timings["runtime_and_images_seconds"] = time.monotonic() - t
        self.control_plane = ControlPlane(self.workdir / "cp", self.log_dir, self.bins)
        self.control_plane.start()
        self._save_state()
        kubeconfig, endpoint = self.control_plane.kubeconfig, self.containerd.endpoint
        kubelet_dir = self.workdir / "kubelet"
        self.agents.append(start_kubelet(self.bins, kubelet_dir, self.log_dir, kubeconfig, endpoint))
        self.agents.append(start_kube_proxy(self.bins, self.log_dir, kubeconfig))
        self._save_state()

        def ready() -> bool:
            for proc in [*self.agents, *self.control_plane.processes] if self.control_plane else []:
                proc.check_alive()
            status = self.kubectl(
                "get", "node", NODE_NAME, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
            )
            taints = self.kubectl("get", "node", NODE_NAME, "-o", "jsonpath={.spec.taints}")
            account = self.kubectl("get", "serviceaccount", "default", "-o", "name", check=False)
            return status == "True" and "not-ready" not in taints and bool(account)

        wait_for(ready, timeout=120, what="node", interval=0.5)

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> str:
        argv = [str(self.bins["kubectl"]), f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=120)
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc.stdout.strip()

    def logs(self) -> dict[str, str]:
        procs = [*(self.control_plane.processes if self.control_plane else []), *self.agents]
        if self.containerd and self.containerd.process:
            procs.append(self.containerd.process)
        return {p.name: p.tail(40) for p in procs}

    def stop(self) -> list[str]:
        """Tear everything down (each step runs even if an earlier one failed); returns what was undone."""
        t0 = time.monotonic()
        done: list[str] = []
        steps = (
            self._keep_pod_logs,
            self._delete_pods,
            self._stop_agents,
            self._stop_runtime,
            self._stop_control_plane,
        )
        for step in steps:
            try:
                step()
            except Exception as exc:  # keep tearing down: a half-stopped node is the worst outcome
                done.append(f"{step.__name__} failed: {exc}")
        if self.snapshot is not None:
            done += self.snapshot.restore()
        done += _unlink_cadvisor_socket(self.workdir)
        done += unmount_under(self.workdir)
        for path in self.workdir.iterdir():  # everything but the logs
            if path != self.log_dir:
                shutil.rmtree(path, ignore_errors=True)
        STATE_FILE.unlink(missing_ok=True)
        self.timings["stop_seconds"] = time.monotonic() - t0
        (self.log_dir / "teardown.log").write_text("\n".join(done) + "\n")
        return done

    def _keep_pod_logs(self) -> None:
        """Copy the containers' logs into :attr:`log_dir` (pods/) before their pods are deleted with them."""
        pod_logs = self.workdir / "kubelet" / "pod-logs"
        if pod_logs.is_dir():
            shutil.copytree(
                pod_logs, self.log_dir / "pods", dirs_exist_ok=True, ignore_dangling_symlinks=True
            )

    def _delete_pods(self) -> None:
        if self.control_plane is None or self.containerd is None:
            return
        if not any(p.name == "kubelet" and p.alive() for p in self.agents):
            return
        self.control_plane.stop_controllers()
        self.kubectl("delete", "pods", "--all", "-A", "--grace-period=1", "--wait=false", check=False)
        containerd = self.containerd

        def gone() -> bool:
            return not self.kubectl("get", "pods", "-A", "-o", "name", check=False) and not containerd.tasks()

        with contextlib.suppress(TimeoutError):
            wait_for(gone, timeout=90, what="pods deleted", interval=0.5)

    def _stop_agents(self) -> None:
        for proc in self.agents:
            proc.stop(timeout=15)
        self.agents.clear()
        if "kube-proxy" in self.bins:
            cleanup_kube_proxy(self.bins, self.log_dir)

    def _stop_runtime(self) -> None:
        if self.containerd is not None:
            self.containerd.stop()
            self.containerd = None

    def _stop_control_plane(self) -> None:
        if self.control_plane is not None:
            self.control_plane.stop()

    def _save_state(self) -> None:
        procs = [*(self.control_plane.processes if self.control_plane else []), *self.agents]
        if self.containerd and self.containerd.process:
            procs.append(self.containerd.process)
        state = {
            "workdir": str(self.workdir),
            "pids": {p.name: p.pid for p in procs if p.pid},
            "snapshot": self.snapshot.__dict__ if self.snapshot else None,
            "socket": str(self.containerd.socket) if self.containerd else None,
        }
        STATE_FILE.write_text(json.dumps(state))


def unmount_under(root: Path) -> list[str]:
    """Lazily unmount whatever is still mounted below ``root`` (deepest first)."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return [f"unmounted {len(points)} leftover mounts"] if points else []


def _unlink_cadvisor_socket(workdir: Path) -> list[str]:
    """Remove :data:`CADVISOR_CONTAINERD` if it is the node's link into ``workdir`` (never a real socket)."""
    link = CADVISOR_CONTAINERD
    if link.is_symlink() and link.readlink().is_relative_to(workdir):
        link.unlink()
        return [f"removed {link}"]
    return []


def sweep() -> list[str]:
    """Undo what a killed run left (from ``STATE_FILE``): its processes, shims, host changes, mounts."""
    if not STATE_FILE.is_file():
        return []
    state = json.loads(STATE_FILE.read_text())
    done = []
    for name, pid in state.get("pids", {}).items():
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if name.encode() in cmdline:
                os.killpg(pid, signal.SIGKILL)
                done.append(f"killed {name} ({pid})")
    if state.get("socket"):
        shims = Containerd(Path(state["socket"]).parent, Path(state["workdir"]) / "logs")
        done.append(f"killed {shims.kill_shims()} shims")
    if state.get("snapshot"):
        done += HostSnapshot(**state["snapshot"]).restore()
    done += _unlink_cadvisor_socket(Path(state["workdir"]))
    done += unmount_under(Path(state["workdir"]))
    STATE_FILE.unlink()
    return done


@contextlib.contextmanager
def running_node(images: tuple[BuiltImage, ...] = ()) -> Iterator[Node]:
    node = Node(images).start()
    try:
        yield node
    finally:
        node.stop()
