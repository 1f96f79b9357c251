"""Find the monitoring tools the tests and the demo run, the envtest way: ``LLMROUTE_PROMETHEUS_DIR``, else
``PATH`` (only the pinned Prometheus version), else the cache (``~/.cache/llmroute/bin/prometheus-v…``),
else build them with ``hack/build-monitoring.sh`` from their Go modules.

Prometheus 3.x is the one tested: its range selectors are left-open (a window holds one sample fewer at its
edge than on 2.x), which is what kube-prometheus-stack users run. Also here: the Prometheus Operator CRDs
(``ServiceMonitor``, ``PodMonitor``, ``PrometheusRule``), generated with controller-gen from that project's
Go API types at test time, never committed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from llmroute_dev import REPO_ROOT

VERSIONS = dict(
    line.split("=", 1)
    for line in (REPO_ROOT / "hack" / "versions.env").read_text().splitlines()
    if "=" in line and not line.lstrip().startswith("#")
)
PROMETHEUS_VERSION = VERSIONS["PROMETHEUS_VERSION"]
PROMETHEUS_OPERATOR_VERSION = VERSIONS["PROMETHEUS_OPERATOR_VERSION"]
PROMETHEUS_TOOLS = ("prometheus", "promtool")
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-monitoring.sh"
MONITORING_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")


def cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "llmroute"


def _version_ok(path: Path) -> bool:
    """A ``prometheus``/``promtool`` found on ``PATH`` counts only if it is the pinned version (Debian's is
    2.x)."""
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return f"version {PROMETHEUS_VERSION} " in out.stdout + out.stderr


def _find(name: str) -> Path | None:
    override = os.environ.get("LLMROUTE_PROMETHEUS_DIR")
    if override:
        return Path(override) / name if (Path(override) / name).is_file() else None
    on_path = shutil.which(name)
    if on_path and _version_ok(Path(on_path)):
        return Path(on_path)
    cached = cache_root() / "bin" / f"prometheus-v{PROMETHEUS_VERSION}-sd-file-http-kubernetes" / name
    return cached if cached.is_file() else None


def _build(*args: str) -> Path:
    if not BUILD_SCRIPT.is_file():
        raise FileNotFoundError(f"{BUILD_SCRIPT} not found: set LLMROUTE_PROMETHEUS_DIR")
    env = dict(os.environ, LLMROUTE_CACHE_DIR=str(cache_root()))
    # progress goes to stderr (shown); the last line of stdout is the directory built into
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), *args], check=True, env=env, stdout=subprocess.PIPE, text=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def prometheus_binary(name: str) -> Path:
    """The path of ``prometheus`` or ``promtool`` (built on first use, about 4 minutes on 2 cores).

    Raises ``FileNotFoundError`` when it cannot be found or built, ``CalledProcessError`` when the build
    fails."""
    if name not in PROMETHEUS_TOOLS:
        raise ValueError(f"{name!r} is not one of {PROMETHEUS_TOOLS}")
    found = _find(name)
    if found is None:
        _build()
        found = _find(name)
    if found is None:
        raise FileNotFoundError(f"{name} still missing after the build")
    return found


def prometheus_operator_crds() -> list[Path]:
    """The generated ``ServiceMonitor``, ``PodMonitor`` and ``PrometheusRule`` CRD files (generated on first
    use with controller-gen from the Prometheus Operator's API types, about a minute)."""
    crd_dir = cache_root() / "crds" / f"prometheus-operator-v{PROMETHEUS_OPERATOR_VERSION}"
    paths = [crd_dir / f"monitoring.coreos.com_{plural}.yaml" for plural in MONITORING_CRDS]
    if not all(p.is_file() for p in paths):
        crd_dir = _build("crds")
        paths = [crd_dir / p.name for p in paths]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not generated in {crd_dir}")
    return paths
