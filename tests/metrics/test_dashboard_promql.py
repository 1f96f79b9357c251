"""Every query of the shipped dashboard parses under Prometheus 3's own parser (``promtool check rules``
on the queries as recording rules), in seconds and without a server; the cluster tier then runs them all
against real proxies and the operator (``tests/cluster/test_dashboard_queries.py``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from llmroute_dev.monitoring.files import dashboard_targets
from llmroute_dev.monitoring.promql import concrete, route_regex
from llmroute_dev.monitoringtools import prometheus_binary

ROOT = Path(__file__).resolve().parents[2]


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    exprs = [q.expr for q in dashboard_targets(ROOT)]
    routes = route_regex("team.a/chat", "ns/chat")  # two routes, one with a regex metacharacter
    rules = [
        {"record": f"llmroute:dashboard_query_{i}", "expr": concrete(e, route=routes, rate_interval="1m")}
        for i, e in enumerate(exprs)
    ]
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [str(prometheus_binary("promtool")), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout
