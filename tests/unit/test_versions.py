"""One source per version. The package version lives in ``llmroute.__version__`` (the wheel, the chart, the
default images and the examples follow it; ``make generate`` copies it); the Kubernetes, etcd and helm
versions live in ``hack/versions.env`` (the build script sources it, the harness reads it; the Go modules,
the Python client, kind and the README must agree)."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from llmroute import __version__
from llmroute.spec.upstream import DEFAULT_IMAGE
from llmroute_dev.binaries import read_versions

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "ghcr.io/llmroute/llmroute"
VERSIONS = read_versions(ROOT / "hack" / "versions.env")
K8S, ETCD, HELM = VERSIONS["K8S_VERSION"], VERSIONS["ETCD_VERSION"], VERSIONS["HELM_VERSION"]
K8S_MINOR = int(K8S.split(".")[1])
# the files allowed to spell the package version out: the source, and copies generated or checked here
VERSION_COPIES = {
    "operator/llmroute/__init__.py",  # the source
    "helm/llmroute/Chart.yaml",  # hack/generate.py
    "manifests/examples/full.yaml",  # hack/generate.py
    "manifests/install.yaml",  # helm template of the chart
    "operator/llmroute/spec/upstream.py",  # DEFAULT_IMAGE, checked below
}
TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".toml", ".md", ".sh", ".env", ".cfg", ".txt", ".json", ".tpl", ""}
SKIP_DIRS = {".git", ".venv", "out", "build", "dist", "node_modules"}


def _yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def test_the_wheel_takes_its_version_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "llmroute.__version__"}


def test_chart_and_default_images_follow_the_package_version() -> None:
    chart = _yaml("helm/llmroute/Chart.yaml")
    assert (chart["version"], chart["appVersion"]) == (__version__, __version__), "run `make generate`"
    image = _yaml("helm/llmroute/values.yaml")["image"]
    reference = f"{image['registry']}/{image['repository']}"
    assert (reference, image["tag"], image["digest"]) == (IMAGE, "", "")  # empty tag: the chart's appVersion
    assert DEFAULT_IMAGE.rsplit(":", 1) == [IMAGE, __version__]


def test_install_manifest_and_examples_carry_the_package_version() -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "manifests" / "install.yaml").read_text()) if d]
    labelled = [d["metadata"]["labels"] for d in docs if "helm.sh/chart" in d["metadata"].get("labels", {})]
    assert len(labelled) >= 5
    for labels in labelled:
        assert labels["app.kubernetes.io/version"] == __version__, "run `make generate`"
        assert labels["helm.sh/chart"] == f"llmroute-{__version__}", "run `make generate`"
    for path in [ROOT / "manifests" / "install.yaml", *(ROOT / "manifests" / "examples").glob("*.yaml")]:
        tags = re.findall(rf"{re.escape(IMAGE)}:([\w.+-]+)", path.read_text())
        assert set(tags) <= {__version__}, f"{path.name}: run `make generate`"
    assert re.search(rf"image: \"?{re.escape(IMAGE)}:", (ROOT / "manifests" / "install.yaml").read_text())


def _text_files() -> list[Path]:
    found = []
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith((".egg-info", "_cache", "__"))]
        for name in files:
            path = Path(top, name)
            if path.suffix in TEXT_SUFFIXES and path.stat().st_size < 1_000_000:
                found.append(path)
    return found


def test_no_file_keeps_its_own_copy_of_the_package_version() -> None:
    holders = {
        str(path.relative_to(ROOT))
        for path in _text_files()
        if __version__ in path.read_text(errors="replace")
    }
    assert "operator/llmroute/__init__.py" in holders
    assert holders <= VERSION_COPIES, "keep the version in llmroute.__version__ only (or generate the copy)"


def test_go_modules_pin_the_versions_of_versions_env() -> None:
    controlplane = (ROOT / "hack" / "controlplane" / "go.mod").read_text()
    assert re.search(rf"^require k8s\.io/kubernetes v{re.escape(K8S)}$", controlplane, re.M)
    staging = re.findall(r"^\s+(k8s\.io/[\w-]+) => k8s\.io/[\w-]+ (v\S+)$", controlplane, re.M)
    assert len(staging) > 20
    assert {version for _, version in staging} == {f"v0.{K8S.split('.', 1)[1]}"}
    etcd = (ROOT / "hack" / "etcd" / "go.mod").read_text()
    assert re.search(rf"^require go\.etcd\.io/etcd/server/v3 v{re.escape(ETCD)}$", etcd, re.M)
    helm = (ROOT / "hack" / "helm" / "go.mod").read_text()
    assert re.search(rf"^require helm\.sh/helm/v4 v{re.escape(HELM)}$", helm, re.M)


def test_build_script_reads_versions_env_and_keeps_none_of_its_own() -> None:
    script = (ROOT / "hack" / "build-binaries.sh").read_text()
    assert 'source "$here/versions.env"' in script
    assert not re.search(r"^\s*(K8S|ETCD|HELM)_VERSION=", script, re.M)


def test_kind_and_the_python_client_are_on_the_kubernetes_minor_the_tests_run() -> None:
    images = [node.get("image", "kind's default") for node in _yaml("kind-config.yaml")["nodes"]]
    assert len(images) >= 2
    assert all(re.fullmatch(rf"kindest/node:v1\.{K8S_MINOR}\.\d+", image) for image in images), images
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    client = next(d for d in project["dependencies"] if d.startswith("kubernetes"))
    # the kubernetes Python client's major is the Kubernetes minor it is generated from (client 37 = 1.37)
    assert client.replace(" ", "") == f"kubernetes>={K8S_MINOR},<{K8S_MINOR + 1}"


def test_readme_names_the_versions_of_versions_env() -> None:
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"\b(kubectl|etcd|helm) v(\d+\.\d+\.\d+)", readme))
    assert named == {("kubectl", K8S), ("etcd", ETCD), ("helm", HELM)}
    assert "hack/versions.env" in readme
