"""Generated files stay in step with their single sources (run `make generate` to refresh them): the CRD
with the pydantic models, the chart's CRD template and manifests/install.yaml with the CRD, the chart's
values.schema.json and README values table with values.yaml."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import yaml

from llmroute_dev.chartvalues import readme_with_table, values_schema

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "llmroute.io_llmroutes.yaml"
CHART = ROOT / "helm" / "llmroute"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "hack" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_crd_is_generated_from_the_models() -> None:
    assert CRD.read_text() == _generator().crd_yaml(), "crds/ is stale: run `make generate`"


def test_chart_crd_template_is_generated_from_the_models() -> None:
    template = CHART / "templates" / "crd-llmroutes.yaml"
    assert template.read_text() == _generator().chart_crd_template(), (
        "the chart's CRD is stale: `make generate`"
    )
    assert not (CHART / "crds").exists(), "crds/ in the chart is installed once and never upgraded by Helm"


def test_install_manifest_carries_the_source_crd() -> None:
    docs = [d for d in yaml.safe_load_all((ROOT / "manifests" / "install.yaml").read_text()) if d]
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    source = yaml.safe_load(CRD.read_text())
    assert [(c["metadata"]["name"], c["spec"]) for c in crds] == [
        (source["metadata"]["name"], source["spec"])
    ], "manifests/install.yaml is stale: run `make generate`"


def test_values_schema_and_readme_table_are_generated_from_values_yaml() -> None:
    values = (CHART / "values.yaml").read_text()
    assert json.loads((CHART / "values.schema.json").read_text()) == values_schema(values), (
        "run `make generate`"
    )
    readme = (CHART / "README.md").read_text()
    assert readme == readme_with_table(readme, values), "the chart README's values table is stale"
