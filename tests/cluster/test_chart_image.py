"""The chart's operator image: llmroute's version by default, with registry, repository, tag or digest
overridable (a digest pins the image and wins over the tag)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from llmroute import __version__
from llmroute_dev.binaries import ensure

CHART = Path(__file__).resolve().parents[2] / "helm" / "llmroute"


def _image(*sets: str) -> str:
    helm = ensure(("helm",))["helm"]
    args = [a for s in sets for a in ("--set", s)]
    out = subprocess.run(
        [str(helm), "template", "llmroute", str(CHART), *args], check=True, capture_output=True, text=True
    ).stdout
    deployment = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment")
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


def test_chart_app_version_is_the_package_version() -> None:
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"] == __version__


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ((), f"ghcr.io/llmroute/llmroute:{__version__}"),
        (
            ("image.registry=registry.example:5000", "image.tag=dev"),
            "registry.example:5000/llmroute/llmroute:dev",
        ),
        (("image.repository=team/gw",), f"ghcr.io/team/gw:{__version__}"),
        (("image.registry=", "image.repository=local/llmroute"), f"local/llmroute:{__version__}"),
        (
            ("image.digest=sha256:" + "a" * 64, "image.tag=ignored"),
            "ghcr.io/llmroute/llmroute@sha256:" + "a" * 64,
        ),
    ],
)
def test_image_overrides(sets: tuple[str, ...], expected: str) -> None:
    assert _image(*sets) == expected
