"""Engines in the rendered proxy config (default metrics URL, scrape settings) and in `llmroute validate`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmroute.cli.main import main
from llmroute.render.config import build_proxy_config, default_metrics_url
from llmroute.spec import LLMRoute

ROOT = Path(__file__).resolve().parents[2]
SELF_HOSTED = ROOT / "manifests" / "examples" / "self-hosted.yaml"


@pytest.mark.parametrize(
    ("url", "metrics"),
    [
        ("http://vllm.inference.svc:8000/v1", "http://vllm.inference.svc:8000/metrics"),
        ("https://sglang.example.com/v1/", "https://sglang.example.com/metrics"),
        ("http://10.0.0.7:3000", "http://10.0.0.7:3000/metrics"),
    ],
)
def test_default_metrics_url_is_metrics_on_the_upstreams_host(url: str, metrics: str) -> None:
    assert default_metrics_url(url) == metrics


def test_engines_and_scrape_settings_reach_the_proxy_config() -> None:
    route = LLMRoute.from_object(yaml.safe_load(SELF_HOSTED.read_text()))
    config = build_proxy_config(route, limits=[], divisor=1, replicas=1)
    by_name = {u.name: u for u in config.upstreams}
    assert (by_name["vllm-h100"].engine, by_name["vllm-h100"].metrics_url) == (
        "vLLM",
        "http://vllm-h100.inference.svc:8000/metrics",
    )
    assert by_name["vllm-l4"].engine == "Auto"
    assert by_name["sglang-a100"].metrics_url == "http://sglang-a100-metrics.inference.svc:30000/metrics"
    assert config.load_balancing == "ResourceAware"
    assert config.engine_metrics.scrape_interval_seconds == 1.0
    assert config.engine_metrics.scrape_timeout_seconds == 0.5


def test_a_hosted_upstream_has_no_engine_to_scrape() -> None:
    doc = {
        "metadata": {"name": "r"},
        "spec": {
            "upstreams": [{"name": "a", "url": "https://api.openai.com/v1", "model": "m"}],
            "rateLimits": {"identity": {"type": "Unauthenticated"}},
        },
    }
    config = build_proxy_config(LLMRoute.from_object(doc), limits=[], divisor=1, replicas=1)
    assert (config.upstreams[0].engine, config.upstreams[0].metrics_url) == (None, None)


def test_validate_names_the_engine_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(SELF_HOSTED.read_text())
    doc["spec"]["upstreams"][0]["engine"] = {"type": "vllm"}
    bad = tmp_path / "route.yaml"
    bad.write_text(yaml.safe_dump(doc))
    assert main(["validate", str(bad)]) == 1
    assert "spec.upstreams[0].engine.type" in capsys.readouterr().err
    assert main(["validate", str(SELF_HOSTED)]) == 0
