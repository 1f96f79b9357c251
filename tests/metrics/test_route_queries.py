"""A route's own PromQL that Prometheus refuses (a typo, a query it cannot evaluate) costs that route its
figures and names the field; every other route on the same Prometheus keeps its metrics. Before, the
refusal failed the whole metrics cycle: every route went MetricsAvailable=False. A real Prometheus."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmroute.controller.hub import MetricsHub
from llmroute.controller.reconcile import registration
from llmroute.controller.settings import OperatorSettings
from llmroute.spec.route import LLMRoute
from llmroute_dev.prometheus import Prometheus, Series

MINIMAL = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "minimal.yaml"
TYPO = "sum(rate(llmroute_requests_total[1m])"  # one parenthesis short: HTTP 400 bad_data
MANY_TO_MANY = "llmroute_requests_total + on() llmroute_requests_total"  # parses, cannot evaluate: 422


def _route(name: str, **queries: Any) -> LLMRoute:
    doc = yaml.safe_load(MINIMAL.read_text())
    doc["metadata"].update(name=name, namespace="ai")
    if queries:
        doc["spec"]["prometheus"] = {"queries": queries}
    return LLMRoute.from_object(doc)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    end = float(int(time.time()) // 60 * 60)
    samples = [(end - 1200 + 60 * i, 120.0 * i) for i in range(21)]  # 2 req/s for 20 minutes
    series = [
        Series("llmroute_requests", {"route": f"ai/{r}", "code": "200"}, samples, kind="counter")
        for r in ("good", "typo", "unevaluable")
    ]
    prom = Prometheus(tmp_path / "prom", backfill=series).start()
    try:
        yield prom
    finally:
        prom.stop()


def test_a_refused_route_query_names_its_field_and_spares_the_other_routes(
    prometheus: Prometheus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMROUTE_PROMETHEUS_URL", prometheus.url)
    monkeypatch.setenv("LLMROUTE_SCRAPE_INTERVAL_SECONDS", "60")
    settings = OperatorSettings()
    hub = MetricsHub()
    routes = {
        "good": _route("good", errorRate="vector(0.01)"),
        "typo": _route("typo", errorRate=TYPO),
        "unevaluable": _route("unevaluable", latencyP95=MANY_TO_MANY),
    }
    for route in routes.values():
        hub.register(registration(route, settings))
    hub.cycle()
    figures = {name: hub.latest(f"ai/{name}") for name in routes}
    assert all(error is None for _, error in figures.values()), figures  # Prometheus itself is fine
    good, typo, unevaluable = (figures[n][0] for n in ("good", "typo", "unevaluable"))
    assert good is not None and typo is not None and unevaluable is not None
    assert good.query_errors == () and good.values["error_rate"] == pytest.approx(0.01)
    assert good.values["rps"] == pytest.approx(2.0, rel=0.05)
    assert len(typo.query_errors) == 1 and typo.query_errors[0].startswith(
        "spec.prometheus.queries.errorRate: Prometheus refused the query (HTTP 400)"
    ), typo.query_errors
    assert "parse error" in typo.query_errors[0]
    assert "rps" in typo.values  # the batched figures still arrive: only the refused query is missing
    assert len(unevaluable.query_errors) == 1, unevaluable.query_errors
    assert unevaluable.query_errors[0].startswith("spec.prometheus.queries.latencyP95: ")
    assert "(HTTP 422)" in unevaluable.query_errors[0]
