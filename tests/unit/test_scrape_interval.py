"""A route may state its own Prometheus' scrape interval: its rate and failover windows span four of those
scrapes, and routes on one Prometheus with different windows are queried as separate batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llmroute.controller.hub import MetricsHub
from llmroute.controller.reconcile import registration
from llmroute.controller.settings import OperatorSettings
from llmroute.spec.route import LLMRoute

MINIMAL = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "minimal.yaml"


def _route(name: str, **prometheus: Any) -> LLMRoute:
    doc = yaml.safe_load(MINIMAL.read_text())
    doc["metadata"].update(name=name, namespace="ai")
    if prometheus:
        doc["spec"]["prometheus"] = prometheus
    return LLMRoute.from_object(doc)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> OperatorSettings:
    monkeypatch.setenv("LLMROUTE_SCRAPE_INTERVAL_SECONDS", "60")
    monkeypatch.delenv("LLMROUTE_RATE_WINDOW", raising=False)
    return OperatorSettings()


def test_the_operators_interval_applies_to_a_route_that_states_none(settings: OperatorSettings) -> None:
    reg = registration(_route("chat"), settings)
    assert reg.rate_window == "240s"
    assert reg.window_seconds >= 240


@pytest.mark.parametrize(("interval", "window"), [(15, "60s"), (30, "120s"), (120, "480s")])
def test_a_routes_own_interval_sets_its_windows(
    settings: OperatorSettings, interval: int, window: str
) -> None:
    reg = registration(_route("chat", scrapeIntervalSeconds=interval), settings)
    assert reg.rate_window == window
    assert reg.window_seconds >= 4 * interval


def test_routes_with_different_windows_are_separate_batches(settings: OperatorSettings) -> None:
    hub = MetricsHub()
    for reg in (
        registration(_route("a"), settings),
        registration(_route("b"), settings),
        registration(_route("c", scrapeIntervalSeconds=15), settings),
    ):
        hub.register(reg)
    assert sorted(window for _, window in hub.sources) == ["240s", "60s"]


@pytest.mark.parametrize("interval", [0, -5, 3601, "1m"])
def test_an_interval_out_of_range_is_refused_naming_the_field(interval: object) -> None:
    with pytest.raises(ValueError, match=r"scrapeIntervalSeconds|scrape_interval_seconds"):
        _route("chat", scrapeIntervalSeconds=interval)
