"""Find the control-plane binaries the envtest way: ``KUBEBUILDER_ASSETS``, else ``PATH`` (version-checked),
else the cache (``~/.cache/llmroute/bin/…``), else build them with ``hack/build-binaries.sh`` from their Go
modules. The versions are those of ``hack/versions.env``, the one place they are kept."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from llmroute_dev import REPO_ROOT

VERSIONS_FILE = REPO_ROOT / "hack" / "versions.env"


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """``NAME=value`` lines of ``hack/versions.env`` (``#`` comments and blank lines skipped)."""
    versions: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            versions[name] = value
    return versions


VERSIONS = read_versions()
K8S_VERSION = VERSIONS["K8S_VERSION"]
ETCD_VERSION = VERSIONS["ETCD_VERSION"]
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm")
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-binaries.sh"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "llmroute" / "bin" / f"k8s-v{K8S_VERSION}-etcd-v{ETCD_VERSION}"


def _version_ok(path: Path) -> bool:
    """Binaries found on PATH must be the versions we test against (Debian's etcd 3.4 is too old)."""
    want = f"v{K8S_VERSION}" if path.name.startswith("kube-") else ETCD_VERSION
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return want in out


def find(name: str) -> Path | None:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and (Path(assets) / name).is_file():
        return Path(assets) / name
    on_path = shutil.which(name)
    # kubectl/helm on PATH may be any version (or a cloud SDK wrapper): use the ones built here
    if on_path and name not in ("kubectl", "helm") and _version_ok(Path(on_path)):
        return Path(on_path)
    cached = cache_dir() / name
    return cached if cached.is_file() else None


def ensure(names: tuple[str, ...] = CONTROL_PLANE) -> dict[str, Path]:
    """Return paths of ``names``, building whatever is missing (minutes, first time only)."""
    found = {n: find(n) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        if not BUILD_SCRIPT.is_file():
            raise FileNotFoundError(
                f"{', '.join(missing)} not found: set KUBEBUILDER_ASSETS or run hack/build-binaries.sh"
            )
        env = dict(os.environ, LLMROUTE_BIN_DIR=str(cache_dir()))
        subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, env=env, stdout=subprocess.DEVNULL)
        found = {n: find(n) for n in names}
    result: dict[str, Path] = {}
    for name, path in found.items():
        if path is None:
            raise FileNotFoundError(f"{name} still missing after the build")
        result[name] = path
    return result
