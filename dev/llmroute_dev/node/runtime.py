"""containerd (Debian's 1.6) as the node's container runtime, on its own root, state and socket, with runc
and the CNI bridge; images come from docker-archive tars (``ctr images import``), never from a registry.

``restrict_oom_score_adj`` is on because root on these VMs lacks CAP_SYS_RESOURCE (without it every pod
sandbox fails with "can't get final child's PID from pipe: EOF"); cgroupfs, not systemd; overlayfs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

from llmroute_dev.node.network import CNI_NETWORK, cni_config
from llmroute_dev.procs import Process, wait_for

NAMESPACE = "k8s.io"  # the containerd namespace the CRI plugin (and so the kubelet) uses
PAUSE_IMAGE = "localhost/llmroute/pause:1"


class Containerd:
    """One containerd for the node; everything it keeps lives under ``workdir``."""

    def __init__(self, workdir: Path, log_dir: Path) -> None:
        self.workdir = workdir
        self.log_dir = log_dir
        self.process: Process | None = None

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def config(self) -> str:
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        w = self.workdir
        return f"""version = 2
root = "{w / "root"}"
state = "{w / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{w / "opt"}"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  enable_selinux = false
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{w / "runc"}"
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{w / "net.d"}"
    max_conf_num = 1
"""

    def start(self) -> Containerd:
        binary = shutil.which("containerd")
        if binary is None or shutil.which("runc") is None or not Path("/usr/lib/cni/bridge").exists():
            raise FileNotFoundError(
                "containerd, runc or the CNI plugins are missing: `make system-deps` installs them"
            )
        (self.workdir / "net.d").mkdir(parents=True, exist_ok=True)
        conf = cni_config(self.workdir / "cni-ipam")
        (self.workdir / "net.d" / f"10-{CNI_NETWORK}.conflist").write_text(json.dumps(conf, indent=1))
        (self.workdir / "config.toml").write_text(self.config())
        self.process = Process(
            "containerd",
            [binary, f"--config={self.workdir / 'config.toml'}", "--log-level=warn"],
            self.log_dir / "containerd.log",
        ).start()
        proc = self.process

        def serving() -> bool:
            proc.check_alive()
            return self.ctr("version", check=False).returncode == 0

        wait_for(serving, timeout=30, what="containerd", interval=0.2)
        return self

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["ctr", f"--address={self.socket}", f"--namespace={NAMESPACE}", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check)

    def import_image(self, archive: Path) -> None:
        """Load a docker-archive or OCI tar; the kubelet finds its tag (``imagePullPolicy: IfNotPresent``)."""
        self.ctr("images", "import", str(archive))

    def images(self) -> list[str]:
        return self.ctr("images", "ls", "-q").stdout.split()

    def tasks(self) -> list[str]:
        """Containers with a running task (pod sandboxes included)."""
        lines = self.ctr("tasks", "ls", check=False).stdout.splitlines()[1:]
        return [line.split()[0] for line in lines if "RUNNING" in line]

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=15)
            self.process = None
        self.kill_shims()

    def kill_shims(self) -> int:
        """Stop the runc shims this containerd started (they outlive it by design); returns how many."""
        killed = 0
        needle = str(self.socket).encode()
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                if argv and argv[0].endswith(b"containerd-shim-runc-v2") and needle in argv:
                    os.kill(int(proc.name), signal.SIGKILL)
                    killed += 1
        return killed
