"""Monitoring assets built from code: the Grafana dashboard's panels (:mod:`.panels`, plain data built with
the PromQL helpers of :mod:`.promql`) and the dashboard JSON (:mod:`.dashboard`, built with
``grafana-foundation-sdk``, a development dependency). ``make generate`` writes
``monitoring/dashboards/llmroute.json`` and the chart's copy (:mod:`.files`); the alert rules are the
hand-written ``monitoring/rules/llmroute.rules.yaml``."""
