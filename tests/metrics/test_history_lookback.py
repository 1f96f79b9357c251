"""Changing a route's ``lookbackDays`` changes the history the operator holds for it, at the next metrics
cycle. Before, the buffer kept the size of the first fetch: raising the look-back from one day to three
still gave the predictor one day, for good (the added days were never fetched, and the buffer had no room
for them). A real Prometheus with four days of backfilled traffic."""

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


def _route(lookback_days: int) -> LLMRoute:
    doc = yaml.safe_load(MINIMAL.read_text())
    doc["metadata"].update(name="chat", namespace="ai")
    doc["spec"]["scaling"] = {"predictive": {"lookbackDays": lookback_days, "minHistoryHours": 1}}
    return LLMRoute.from_object(doc)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Prometheus, float]]:
    end = float(int(time.time()) // 60 * 60)
    samples = [(end - 4 * DAY + 60 * i, 120.0 * i) for i in range(4 * 1440 + 1)]  # 2 req/s for four days
    series = [Series("llmroute_requests", {"route": KEY, "code": "200"}, samples, kind="counter")]
    prom = Prometheus(tmp_path / "prom", backfill=series).start()
    try:
        yield prom, end - 4 * DAY
    finally:
        prom.stop()


def _known(hub: MetricsHub) -> tuple[float, np.ndarray, int]:
    """(unix time of the oldest known minute, the known values, the buffer's length in minutes)."""
    start, values = hub.history(KEY, time.time())
    known = np.flatnonzero(~np.isnan(values))
    assert known.size, "no history fetched"
    return start + 60.0 * float(known[0]), values[known], int(values.shape[0])


def test_a_changed_lookback_resizes_the_history_and_fetches_the_days_it_now_covers(
    prometheus: tuple[Prometheus, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    prom, first_sample = prometheus
    monkeypatch.setenv("LLMROUTE_PROMETHEUS_URL", prom.url)
    monkeypatch.setenv("LLMROUTE_SCRAPE_INTERVAL_SECONDS", "60")
    settings = OperatorSettings()
    hub = MetricsHub()

    hub.register(registration(_route(1), settings))
    hub.cycle()
    oldest, values, length = _known(hub)
    assert length <= 1440 + 1
    assert oldest >= time.time() - DAY - 120  # one day back, no more

    hub.register(registration(_route(3), settings))
    hub.cycle()
    oldest, values, length = _known(hub)
    assert 3 * 1440 - 1 <= length <= 3 * 1440 + 1
    assert oldest <= time.time() - 3 * DAY + 600, "the two added days were not fetched"
    assert oldest >= first_sample  # nothing before the first sample
    assert values.size >= 3 * 1440 - 20  # every minute of the three days, not only the first day's
    assert np.allclose(values, 2.0, rtol=0.05)

    hub.register(registration(_route(2), settings))
    hub.cycle()
    oldest, values, length = _known(hub)
    assert length <= 2 * 1440 + 1  # a shorter look-back hands the memory back
    assert oldest >= time.time() - 2 * DAY - 120
    assert values.size >= 2 * 1440 - 20
