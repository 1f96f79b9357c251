"""llmroute's alert rules under Prometheus 3's own tools: ``promtool check rules`` on the rule file and on
the chart's rendered PrometheusRule, ``promtool test rules`` on the unit cases (each alert firing and not
firing, the per-route threshold join included), and every alert documented in the runbook."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from llmroute_dev.binaries import ensure
from llmroute_dev.monitoring.promql import ROUTE_GAUGES, metric_names
from llmroute_dev.monitoringtools import prometheus_binary

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "rules" / "llmroute.rules.yaml"
RULE_TESTS = RULES.with_name("llmroute.rules.test.yaml")
RUNBOOK = ROOT / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/llmroute/llmroute/blob/main/docs/runbook.md"


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _promtool(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [str(prometheus_binary("promtool")), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_checks_the_rule_file() -> None:
    out = _promtool("check", "rules", str(RULES))
    assert f"SUCCESS: {len(_alerts())} rules found" in out


def test_promtool_unit_tests_pass() -> None:
    out = _promtool("test", "rules", RULE_TESTS.name, cwd=RULES.parent)
    assert "SUCCESS" in out


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    checks = [c for case in cases for c in case["alert_rule_test"]]
    for alert in _alerts():
        name = alert["alert"]
        mine = [c for c in checks if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in mine), f"{name}: no case where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{name}: no case where it stays silent"


def test_every_alert_is_documented_and_links_its_runbook_section() -> None:
    sections = set(re.findall(r"^## (\w+)$", RUNBOOK.read_text(), flags=re.MULTILINE))
    for alert in _alerts():
        name, annotations = alert["alert"], alert["annotations"]
        assert name in sections, f"docs/runbook.md has no section for {name}"
        assert annotations["runbook_url"] == f"{RUNBOOK_URL}#{name.lower()}"
        assert annotations["summary"] and annotations["description"]
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert.get("for"), f"{name} fires on a single evaluation"


def test_route_gauges_read_by_the_rules_are_the_documented_ones() -> None:
    used = {n for alert in _alerts() for n in metric_names(alert["expr"]) if n.startswith("llmroute_route_")}
    assert used <= set(ROUTE_GAUGES), used - set(ROUTE_GAUGES)


def test_chart_prometheus_rule_passes_promtool(tmp_path: Path) -> None:
    helm = ensure(("helm",))["helm"]
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            "llmroute",
            str(ROOT / "helm" / "llmroute"),
            "--set",
            "monitoring.prometheusRule.enabled=true",
            "--set",
            "monitoring.prometheusRule.runbookBaseUrl=https://runbooks.example/llmroute.md",
            "--show-only",
            "templates/monitoring.yaml",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (rule,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load(
        RULES.read_text().replace(RUNBOOK_URL, "https://runbooks.example/llmroute.md")
    )
    plain = tmp_path / "chart.rules.yaml"
    plain.write_text(yaml.safe_dump(rule["spec"]))
    assert f"SUCCESS: {len(_alerts())} rules found" in _promtool("check", "rules", str(plain))
