"""Regenerate the monitoring files: the Grafana dashboard JSON (from llmroute_dev.monitoring.panels) and the
Helm chart's copies of the dashboard and of the alert rules.

  llmroute_dev.monitoring.dashboard          ->  monitoring/dashboards/llmroute.json, helm/llmroute/files/
  monitoring/rules/llmroute.rules.yaml   ->  helm/llmroute/files/llmroute.rules.yaml

`make generate` runs this; tests/unit/test_monitoring_files.py fails on drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "dev")]

from llmroute_dev.monitoring.files import expected  # noqa: E402


def main() -> None:
    for path, content in expected(ROOT).items():
        (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / path).write_text(content)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
