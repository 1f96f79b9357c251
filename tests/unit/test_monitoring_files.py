"""The shipped monitoring files stay equal to what the code generates (run `make generate` to refresh
them), and the dashboard is what Grafana expects: every query on a Prometheus datasource variable, the
``route`` variable in every per-route query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmroute_dev.monitoring.files import DASHBOARD, RULES, dashboard_targets, expected
from llmroute_dev.monitoring.panels import panels
from llmroute_dev.monitoring.promql import ROUTE_GAUGES, concrete, metric_names

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted(expected(ROOT), key=str), ids=str)
def test_generated_file_is_current(path: Path) -> None:
    want = expected(ROOT)[path]
    assert (ROOT / path).read_text() == want, f"{path} is stale: run `make generate`"


def test_dashboard_queries_use_the_datasource_and_route_variables() -> None:
    board = json.loads((ROOT / DASHBOARD).read_text())
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "namespace", "route"]
    targets = dashboard_targets(ROOT)
    assert len(targets) == sum(len(p.queries) for p in panels())
    for target in targets:
        assert target.datasource == {"type": "prometheus", "uid": "${datasource}"}
        operator_only = metric_names(target.expr) <= {
            "llmroute_operator_reconcile_duration_seconds_bucket",
            "llmroute_operator_reconcile_errors_total",
            "llmroute_operator_scale_writes_total",
            "llmroute_operator_metrics_cycle_seconds",
            "llmroute_operator_metrics_cycle_queries",
            "llmroute_operator_routes",
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
        }
        assert operator_only or '$route"' in target.expr, target.expr


def test_concrete_substitutes_every_variable() -> None:
    for panel in panels():
        for query in panel.queries:
            expr = concrete(query.expr, route="ns/chat", rate_interval="1m")
            assert "$" not in expr, expr


def test_route_gauges_named_in_the_panels_are_documented() -> None:
    used = {name for p in panels() for q in p.queries for name in metric_names(q.expr)}
    assert {n for n in used if n.startswith("llmroute_route_")} <= set(ROUTE_GAUGES)


def test_chart_rules_are_the_rule_file() -> None:
    chart = yaml.safe_load((ROOT / "helm" / "llmroute" / "files" / RULES.name).read_text())
    assert chart == yaml.safe_load((ROOT / RULES).read_text())
