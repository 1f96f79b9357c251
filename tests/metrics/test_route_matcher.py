"""The operator's per-route load query asked of a real Prometheus for routes whose keys hold regex
metacharacters (``-`` and ``.``, as Kubernetes names do): it parses, and matches exactly those routes.
Before, ``re.escape`` wrote ``\\-`` into the PromQL string, an invalid escape: the history backfill of a
route registered after the first metrics cycle was a 400 that failed the whole cycle for every route."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmroute.prom.queries import load_query
from llmroute_dev.prometheus import Prometheus, Series

ROUTES = ("llm-prod/chat.v1", "team.a/chat-2")
DECOYS = (
    "llmXprod/chat.v1",
    "llm-prod/chatXv1",
    "llm-prod/chat.v10",
    "ns/chat",
)  # a '.' or '-' read as regex


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Prometheus, float]]:
    end = float(int(time.time()) // 60 * 60 - 600)
    samples = [(end - 3600 + 60 * i, 60.0 * i) for i in range(61)]  # 1 req/s for an hour
    series = [
        Series("llmroute_requests", {"route": r, "code": "200"}, samples, kind="counter")
        for r in ROUTES + DECOYS
    ]
    prom = Prometheus(tmp_path / "prom", backfill=series).start()
    try:
        yield prom, end
    finally:
        prom.stop()


@pytest.mark.parametrize("wanted", [ROUTES[:1], ROUTES])
def test_the_load_query_matches_exactly_the_routes_named(
    prometheus: tuple[Prometheus, float], wanted: tuple[str, ...]
) -> None:
    prom, end = prometheus
    result = prom.query_range(load_query("rps", "5m", list(wanted)), end - 1800, end, 60)  # raises on a 400
    found = {r["metric"]["route"]: [float(v) for _, v in r["values"]] for r in result}
    assert set(found) == set(wanted)
    assert all(v == pytest.approx(1.0) for values in found.values() for v in values), found
