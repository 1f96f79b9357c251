"""The node's host-side state and how every piece of it is undone: the pod bridge and the Service route,
iptables chains, kernel settings the kubelet changes, the kubelet's cgroups, pod network namespaces.

Safety: pods live on a private /24 behind ``BRIDGE``; the Service range is routed *to the bridge*, so a
Service IP can never follow the default route off the machine; pods get a route to the Service range only
(no default route). :class:`HostSnapshot` records what existed before the node started, so teardown removes
only what the node added and restores what it changed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

BRIDGE = "llmr0"
POD_CIDR = ipaddress.ip_network("10.213.0.0/24")
SERVICE_CIDR = ipaddress.ip_network("10.214.0.0/24")
NODE_IP = str(POD_CIDR[1])  # the bridge's own address: apiserver, kubelet, fake upstreams, Prometheus
CNI_NETWORK = "llmroute-pods"
# kernel settings the kubelet and kube-proxy may set (restored if they changed)
SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/netfilter/nf_conntrack_max",
)
TABLES = ("filter", "nat", "mangle")
IPTABLES = ("iptables", "ip6tables")
NETNS_DIR = Path("/var/run/netns")
# directories containerd's CNI code creates on first use (removed again if the node created them)
CREATED_DIRS = ("/var/run/netns", "/var/lib/cni", "/run/containerd")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def run(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
    return proc.stdout


def cni_config(ipam_dir: Path) -> dict[str, object]:
    """The pods' network: the bridge plugin on ``BRIDGE``, host-local addresses kept under ``ipam_dir``,
    a route to the Service range only, no masquerading (nothing leaves the machine)."""
    return {
        "cniVersion": "1.0.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": str(POD_CIDR), "gateway": NODE_IP}]],
                    "routes": [{"dst": str(SERVICE_CIDR)}],
                },
            },
            {"type": "loopback"},
        ],
    }


def chains() -> dict[str, set[str]]:
    """Every chain in every table, keyed ``"<binary> <table>"``."""
    found: dict[str, set[str]] = {}
    for binary in IPTABLES:
        for table in TABLES:
            out = run(binary, "-w", "-t", table, "-S", check=False)
            found[f"{binary} {table}"] = {m.group(1) for m in re.finditer(r"^-N (\S+)$", out, re.M)}
    return found


@dataclass
class HostSnapshot:
    """What the host looked like before the node: restored or removed by :meth:`restore`."""

    sysctls: dict[str, str] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)
    netns: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    existing_dirs: list[str] = field(default_factory=list)

    @classmethod
    def take(cls) -> HostSnapshot:
        sysctls = {}
        for key in SYSCTLS:
            with contextlib.suppress(OSError):
                sysctls[key] = (Path("/proc/sys") / key).read_text().strip()
        return cls(
            sysctls=sysctls,
            chains={k: sorted(v) for k, v in chains().items()},
            netns=sorted(p.name for p in NETNS_DIR.glob("*")) if NETNS_DIR.is_dir() else [],
            cgroups=sorted(str(p) for p in CGROUP_ROOT.glob("*/kubepods*")),
            existing_dirs=[d for d in CREATED_DIRS if Path(d).exists()],
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=1))

    @classmethod
    def load(cls, path: Path) -> HostSnapshot:
        return cls(**json.loads(path.read_text()))

    def restore(self) -> list[str]:
        """Undo the node's host changes; returns what it did (for the log)."""
        done = remove_bridge()
        done += self._remove_chains()
        done += self._remove_netns()
        done += self._remove_cgroups()
        for key, value in self.sysctls.items():
            path = Path("/proc/sys") / key
            with contextlib.suppress(OSError):
                if path.read_text().strip() != value:
                    path.write_text(value)
                    done.append(f"sysctl {key}={value}")
        for created in CREATED_DIRS:
            if created not in self.existing_dirs and Path(created).is_dir():
                subprocess.run(["rm", "-rf", created], check=False)
                done.append(f"removed {created}")
        return done

    def _remove_chains(self) -> list[str]:
        done = []
        for key, now in chains().items():
            binary, table = key.split()
            added = now - set(self.chains.get(key, []))
            if not added:
                continue
            rules = run(binary, "-w", "-t", table, "-S", check=False).splitlines()
            for rule in rules:  # first every rule that jumps to an added chain, from chains we keep
                parts = rule.split()
                if parts[:1] == ["-A"] and parts[1] not in added and _jumps_to(parts, added):
                    run(binary, "-w", "-t", table, "-D", *parts[1:], check=False)
            for chain in added:
                run(binary, "-w", "-t", table, "-F", chain, check=False)
            for chain in added:
                run(binary, "-w", "-t", table, "-X", chain, check=False)
            done.append(f"{binary} -t {table}: removed {len(added)} chains")
        return done

    def _remove_netns(self) -> list[str]:
        if not NETNS_DIR.is_dir():
            return []
        added = [p.name for p in NETNS_DIR.glob("cni-*") if p.name not in self.netns]
        for name in added:
            run("ip", "netns", "delete", name, check=False)
        return [f"removed {len(added)} pod network namespaces"] if added else []

    def _remove_cgroups(self) -> list[str]:
        removed = 0
        for top in CGROUP_ROOT.glob("*/kubepods*"):
            if str(top) in self.cgroups:
                continue
            for procs in top.rglob("cgroup.procs"):  # containers whose shim is gone (a crashed run)
                for pid in procs.read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
            for path in sorted(
                (p for p in [top, *top.rglob("*")] if p.is_dir()), key=lambda p: -len(p.parts)
            ):
                with contextlib.suppress(OSError):
                    path.rmdir()
                    removed += 1
        return [f"removed {removed} kubelet cgroups"] if removed else []


def _jumps_to(parts: list[str], targets: set[str]) -> bool:
    return any(flag in ("-j", "-g") and i + 1 < len(parts) and parts[i + 1] in targets
               for i, flag in enumerate(parts))  # fmt: skip


def add_bridge() -> None:
    """The pod bridge with the node's address, and the Service range routed to it."""
    if run("ip", "-o", "link", "show", BRIDGE, check=False).strip():
        remove_bridge()
    run("ip", "link", "add", BRIDGE, "type", "bridge")
    run("ip", "addr", "add", f"{NODE_IP}/{POD_CIDR.prefixlen}", "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")
    run("ip", "route", "replace", str(SERVICE_CIDR), "dev", BRIDGE)


def remove_bridge() -> list[str]:
    done = []
    if run("ip", "route", "show", str(SERVICE_CIDR), check=False).strip():
        run("ip", "route", "del", str(SERVICE_CIDR), check=False)
        done.append(f"route {SERVICE_CIDR}")
    if run("ip", "-o", "link", "show", BRIDGE, check=False).strip():
        run("ip", "link", "del", BRIDGE, check=False)
        done.append(f"bridge {BRIDGE}")
    return done
