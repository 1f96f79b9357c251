"""The llmroute dashboard's content: its rows and panels, each with title, unit and PromQL (built from
:mod:`llmroute_dev.monitoring.promql`); :mod:`llmroute_dev.monitoring.dashboard` turns them into Grafana
JSON."""

from __future__ import annotations

from llmroute_dev.monitoring.promql import (
    FAILED,
    HEALTH,
    REQUESTS,
    ROUTE,
    UPSTREAM_SET,
    Panel,
    Query,
    Row,
    containers,
    operator_only,
    per_replica,
    proxy_pods,
    quantiles,
    rate,
    ratio,
    threshold,
)

OVERVIEW = Row(
    "Overview",
    (
        Panel(
            "Requests/s",
            "Requests answered by the proxies, all tiers.",
            "reqps",
            (Query(f"sum({REQUESTS})", "requests/s"),),
            "stat",
            6,
        ),
        Panel(
            "Error ratio",
            "Share of requests answered 5xx or not at all (code 0).",
            "percentunit",
            (
                Query(
                    f"(sum({FAILED}) or 0 * sum({REQUESTS})) / sum({REQUESTS})",
                    "errors",
                ),
            ),
            "stat",
            6,
        ),
        Panel(
            "p95 latency",
            "95th percentile of the request duration.",
            "s",
            (quantiles("llmroute_request_duration_seconds")[1],),
            "stat",
            6,
        ),
        Panel(
            "Proxies",
            "Proxy processes reporting metrics.",
            "none",
            (Query(f"count(llmroute_proxy_config_info{{{ROUTE}}})", "proxies"),),
            "stat",
            6,
        ),
    ),
)
TRAFFIC = Row(
    "Traffic",
    (
        Panel(
            "Requests/s by tier and code",
            "Answers by client tier and HTTP status (0: no answer from any upstream).",
            "reqps",
            (Query(f"sum by (tier, code) ({REQUESTS})", "{{tier}} {{code}}"),),
            main=True,
        ),
        Panel(
            "Error rate",
            "Share of requests answered 5xx or not at all, per route, and the route's alert threshold.",
            "percentunit",
            (
                Query(ratio(FAILED, REQUESTS, "route"), "{{route}}"),
                Query(threshold("HighErrorRate"), "{{route}} alert threshold"),
            ),
            main=True,
        ),
        Panel(
            "Latency",
            "Request duration percentiles (all tiers and upstreams) and the p95 alert threshold.",
            "s",
            (
                *quantiles("llmroute_request_duration_seconds"),
                Query(threshold("HighLatencyP95"), "{{route}} p95 alert threshold"),
            ),
            main=True,
        ),
        Panel(
            "Time to first token",
            "Time to the first response byte: the first token of a stream, the whole answer otherwise.",
            "s",
            quantiles("llmroute_time_to_first_byte_seconds"),
        ),
        Panel(
            "Tokens/s by tier",
            "Upstream tokens in (prompt) and out (completion), by client tier.",
            "short",
            (Query(f"sum by (tier, direction) ({rate('llmroute_tokens_total')})", "{{tier}} {{direction}}"),),
        ),
        Panel(
            "Rate-limited and shed requests by tier",
            "429s from llmroute's limits and 503s from the priority admission queue, by tier.",
            "reqps",
            (
                Query(f"sum by (tier) ({rate('llmroute_ratelimited_total')})", "{{tier}} rate-limited"),
                Query(f"sum by (tier) ({rate('llmroute_proxy_shed_total')})", "{{tier}} shed"),
            ),
            main=True,
        ),
        Panel(
            "Cache hit ratio",
            "Share of cacheable requests answered from the proxies' cache.",
            "percentunit",
            (
                Query(
                    ratio(
                        rate("llmroute_requests_total", 'cache="hit"'),
                        rate("llmroute_requests_total", 'cache=~"hit|miss"'),
                        "route",
                    ),
                    "{{route}}",
                ),
            ),
        ),
        Panel(
            "In flight",
            "Requests being served, and requests queued for an admission slot.",
            "short",
            (
                Query(f"sum by (route) (llmroute_inflight_requests{{{ROUTE}}})", "{{route}} in flight"),
                Query(f"sum by (route) (llmroute_proxy_admission_waiting{{{ROUTE}}})", "{{route}} queued"),
            ),
        ),
    ),
)
UPSTREAMS = Row(
    "Upstreams and failover",
    (
        Panel(
            "Requests/s by upstream",
            "Answers by the upstream that produced them: failover shows as traffic moving between groups.",
            "reqps",
            (
                Query(
                    f"sum by (upstream) ({rate('llmroute_requests_total', UPSTREAM_SET)})",
                    "{{upstream}}",
                ),
            ),
            main=True,
        ),
        Panel(
            "Upstream attempts by outcome",
            "Every attempt the proxies made, retries included: ok, status_<code>, timeout, error.",
            "reqps",
            (
                Query(
                    f"sum by (upstream, outcome) ({rate('llmroute_proxy_upstream_attempts_total')})",
                    "{{upstream}} {{outcome}}",
                ),
            ),
            main=True,
        ),
        Panel(
            "Upstream health (operator)",
            "The operator's failover state of each upstream.",
            "none",
            (
                Query(
                    " + ".join(
                        f"{value} * max by (route, upstream) "
                        f'(llmroute_route_upstream_state{{{ROUTE}, state="{state}"}})'
                        for value, state, _ in HEALTH
                    ),
                    "{{upstream}}",
                ),
            ),
            "state",
            mappings=HEALTH,
        ),
        Panel(
            "Upstream accepted by the proxies",
            "1 while every proxy accepts the upstream, 0 while all have ejected it (passive health).",
            "none",
            (Query(f"min by (upstream) (llmroute_upstream_healthy{{{ROUTE}}})", "{{upstream}}"),),
            "state",
            mappings=((1, "accepted", "green"), (0, "ejected", "red")),
        ),
        Panel(
            "Active upstream group",
            "The upstream group the operator tells the proxies to use (0: the primary).",
            "none",
            (Query(f"max by (route) (llmroute_route_active_group{{{ROUTE}}})", "{{route}}"),),
        ),
        Panel(
            "Conditions",
            "The route's KEP-1623 conditions that are True.",
            "none",
            (
                Query(
                    f'max by (route, type) (llmroute_route_condition{{{ROUTE}, status="True"}})',
                    "{{route}} {{type}}",
                ),
            ),
            "state",
            mappings=((1, "True", "orange"), (0, "False", "transparent")),
        ),
    ),
)
SCALING = Row(
    "Scaling",
    (
        Panel(
            "Replicas",
            "Desired (the operator's decision), current (the Deployment's), bounds, the forecast's replicas, "
            "and the proxies reporting metrics.",
            "none",
            (
                Query(f"max by (route, kind) (llmroute_route_replicas{{{ROUTE}}})", "{{route}} {{kind}}"),
                Query(
                    f"count by (route) (llmroute_proxy_config_info{{{ROUTE}}})", "{{route}} proxies reporting"
                ),
            ),
            main=True,
        ),
        Panel(
            "Load and forecast",
            "The load the operator scales on, its forecast, the proxies' requests/s and the "
            "request-rate alert threshold.",
            "short",
            (
                Query(f"max by (route) (llmroute_route_load{{{ROUTE}}})", "{{route}} load"),
                Query(f"max by (route) (llmroute_route_load_forecast{{{ROUTE}}})", "{{route}} forecast"),
                Query(f"sum by (route) ({REQUESTS})", "{{route}} requests/s"),
                Query(threshold("HighRequestRate"), "{{route}} alert threshold"),
            ),
            main=True,
        ),
        Panel(
            "Utilization",
            "Load over (running replicas x targetPerReplica): above 100 % the route needs more replicas.",
            "percentunit",
            (Query(f"max by (route) (llmroute_route_utilization{{{ROUTE}}})", "{{route}}"),),
        ),
        Panel(
            "Per-replica limits",
            "Each tier's effective limit on one proxy replica (the global limit divided across replicas).",
            "short",
            (
                Query(
                    per_replica("llmroute_route_limit_requests_per_minute"),
                    "{{route}} {{tier}} requests/min",
                ),
                Query(
                    per_replica("llmroute_route_limit_tokens_per_minute"),
                    "{{route}} {{tier}} tokens/min",
                ),
            ),
        ),
        Panel(
            "Shed factor by tier",
            "Multiplier adaptive shedding applies to a tier's limits (1: not shed).",
            "percentunit",
            (Query(f"min by (route, tier) (llmroute_route_shed_factor{{{ROUTE}}})", "{{route}} {{tier}}"),),
        ),
    ),
)
RESOURCES = Row(
    "Proxy resources",
    (
        Panel(
            "Proxy CPU",
            "CPU cores used by each proxy: the process's own figure, and the container's where cAdvisor "
            "is scraped.",
            "short",
            (
                Query(proxy_pods("rate(process_cpu_seconds_total[$__rate_interval])"), "{{instance}}"),
                Query(
                    containers("container_cpu_usage_seconds_total", counter=True),
                    "{{pod}} (container)",
                ),
            ),
        ),
        Panel(
            "Proxy memory",
            "Resident memory of each proxy process, and the container's working set where cAdvisor is "
            "scraped.",
            "bytes",
            (
                Query(proxy_pods("process_resident_memory_bytes"), "{{instance}}"),
                Query(containers("container_memory_working_set_bytes", counter=False), "{{pod}} (container)"),
            ),
        ),
    ),
)
OPERATOR = Row(
    "Operator",
    (
        Panel(
            "Reconcile duration",
            "Duration of one route's reconcile cycle (all routes).",
            "s",
            tuple(
                Query(
                    f"histogram_quantile({q}, sum by (le) "
                    "(rate(llmroute_operator_reconcile_duration_seconds_bucket[$__rate_interval])))",
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ),
        ),
        Panel(
            "Reconcile errors and replica writes",
            "Failed reconcile cycles and replica counts written, per second.",
            "short",
            (
                Query(
                    "sum(rate(llmroute_operator_reconcile_errors_total[$__rate_interval]))",
                    "reconcile errors",
                ),
                Query(
                    "sum by (direction) (rate(llmroute_operator_scale_writes_total[$__rate_interval]))",
                    "writes {{direction}}",
                ),
            ),
        ),
        Panel(
            "Metrics cycle",
            "Duration of the last metrics cycle (all routes' queries) and the number of queries it sent.",
            "s",
            (
                Query("max(llmroute_operator_metrics_cycle_seconds)", "duration"),
                Query("max(llmroute_operator_metrics_cycle_queries)", "queries"),
            ),
        ),
        Panel(
            "Operator CPU and memory",
            "CPU cores and resident memory (MiB) of the operator process.",
            "short",
            (
                Query(operator_only("rate(process_cpu_seconds_total[$__rate_interval])"), "CPU cores"),
                Query(operator_only("process_resident_memory_bytes / 1048576"), "memory MiB"),
            ),
        ),
    ),
)
ROWS: tuple[Row, ...] = (OVERVIEW, TRAFFIC, UPSTREAMS, SCALING, RESOURCES, OPERATOR)


def panels() -> list[Panel]:
    return [p for row in ROWS for p in row.panels]
