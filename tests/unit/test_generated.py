"""Generated files stay in step with their single sources (run `make generate` to refresh them): the CRD
with the pydantic models, the chart's copy and manifests/install.yaml with the CRD."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "llmroute.io_llmroutes.yaml"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "hack" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_crd_is_generated_from_the_models() -> None:
    assert CRD.read_text() == _generator().crd_yaml(), "crds/ is stale: run `make generate`"


def test_chart_crd_is_the_source_crd() -> None:
    copy = ROOT / "helm" / "llmroute" / "crds" / CRD.name
    assert copy.read_text() == CRD.read_text(), "helm/llmroute/crds is stale: run `make generate`"


def test_install_manifest_carries_the_source_crd() -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "manifests" / "install.yaml").read_text()) if d]
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert crds == [yaml.safe_load(CRD.read_text())], "manifests/install.yaml is stale: run `make generate`"
