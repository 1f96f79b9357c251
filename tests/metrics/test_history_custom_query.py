"""Changing a Custom metric's query replaces the history the operator holds for the route at the next
metrics cycle. Before, the old query's days stayed in the buffer and the new query's minutes were
appended to them: the nowcast and the predictor read one series made of two different figures (here
requests/s, then the same traffic in requests/min). A real Prometheus with a day of backfilled traffic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from llmroute.controller.hub import MetricsHub
from llmroute.controller.reconcile import registration
from llmroute.controller.settings import OperatorSettings
from llmroute.spec.route import LLMRoute
from llmroute_dev.prometheus import Prometheus, Series

MINIMAL = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "minimal.yaml"
DAY = 86400
KEY = "ai/chat"
PER_SECOND = 'sum(rate(llmroute_requests_total{route="$route"}[4m]))'
PER_MINUTE = f"60 * {PER_SECOND}"


def _route(query: str) -> LLMRoute:
    doc = yaml.safe_load(MINIMAL.read_text())
    doc["metadata"].update(name="chat", namespace="ai")
    doc["spec"]["scaling"] = {
        "metric": {"type": "Custom", "query": query, "targetPerReplica": 10},
        "predictive": {"lookbackDays": 1, "minHistoryHours": 1},
    }
    return LLMRoute.from_object(doc)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    end = float(int(time.time()) // 60 * 60)
    samples = [(end - DAY + 60 * i, 120.0 * i) for i in range(1440 + 1)]  # 2 req/s for a day
    series = [Series("llmroute_requests", {"route": KEY, "code": "200"}, samples, kind="counter")]
    prom = Prometheus(tmp_path / "prom", backfill=series).start()
    try:
        yield prom
    finally:
        prom.stop()


def _known(hub: MetricsHub) -> np.ndarray:
    _, values = hub.history(KEY, time.time())
    known = values[~np.isnan(values)]
    assert known.size, "no history fetched"
    return known[5:]  # the first minutes' 4m rates cover less than four minutes of the counter


def test_a_changed_custom_query_replaces_the_history(
    prometheus: Prometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMROUTE_PROMETHEUS_URL", prometheus.url)
    monkeypatch.setenv("LLMROUTE_SCRAPE_INTERVAL_SECONDS", "60")
    settings = OperatorSettings()
    hub = MetricsHub()

    hub.register(registration(_route(PER_SECOND), settings))
    hub.cycle()
    before = _known(hub)
    assert before.size >= 1440 - 25 and np.allclose(before, 2.0, rtol=0.05)

    hub.register(registration(_route(PER_MINUTE), settings))
    hub.cycle()
    after = _known(hub)
    assert after.size >= 1440 - 25, "the new query's past was not fetched"
    stale = int(np.sum(np.isclose(after, 2.0, rtol=0.05)))
    assert stale == 0, f"{stale} minutes of the old query's figures kept as the new query's history"
    assert np.allclose(after, 120.0, rtol=0.05)
