"""The operator's own Prometheus metrics (served on ``LLMROUTE_METRICS_PORT``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILE_SECONDS = Histogram(
    "llmroute_operator_reconcile_duration_seconds",
    "Duration of one route's reconcile cycle",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILE_ERRORS = Counter("llmroute_operator_reconcile_errors_total", "Reconcile cycles that failed")
DECISIONS = Counter("llmroute_operator_scale_writes_total", "Replica counts written", ["direction"])
ROUTES = Gauge("llmroute_operator_routes", "LLMRoutes being reconciled")
METRICS_CYCLE_SECONDS = Gauge("llmroute_operator_metrics_cycle_seconds", "Duration of the last metrics cycle")
METRICS_CYCLE_QUERIES = Gauge(
    "llmroute_operator_metrics_cycle_queries", "Prometheus queries in the last cycle"
)
METRICS_CYCLES = Counter("llmroute_operator_metrics_cycles_total", "Metrics cycles run")
PROMETHEUS_QUERIES = Counter("llmroute_operator_prometheus_queries_total", "Prometheus queries sent")
