"""Monitoring assets built from code: the Grafana dashboard's panels and queries (:mod:`.panels`, plain
data) and the dashboard itself (:mod:`.dashboard`, built with ``grafana-foundation-sdk``, a development
dependency). ``make generate`` writes ``monitoring/dashboards/llmroute.json`` and the chart's copy; the alert
rules are the hand-written ``monitoring/rules/llmroute.rules.yaml``."""
