"""Generated copies stay in step with their single sources (run `make generate` to refresh them)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "llmroute.io_llmroutes.yaml"


def test_chart_crd_is_the_source_crd() -> None:
    copy = ROOT / "helm" / "llmroute" / "crds" / CRD.name
    assert copy.read_text() == CRD.read_text(), "helm/llmroute/crds is stale: run `make generate`"


def test_install_manifest_carries_the_source_crd() -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "manifests" / "install.yaml").read_text()) if d]
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert crds == [yaml.safe_load(CRD.read_text())], "manifests/install.yaml is stale: run `make generate`"
