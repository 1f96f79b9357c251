"""200 LLMRoutes on one operator: Prometheus queries per metrics cycle (with 10 routes, then 200), cycle
duration, reconcile duration, operator RSS and CPU. Seven days of per-minute history per route are
backfilled, so the history the predictor reads is held in memory as in production. Prints JSON.

    .venv/bin/python -m bench.operator_scale [--routes 200] [--history-days 7] [--measure-seconds 120]
"""

from __future__ import annotations

import argparse
import json
import re
import time
import urllib.request

from kubernetes import client

from bench.operator_common import cpu_seconds, environment, namespace, rss_mb, start_operator
from llmroute import GROUP, PLURAL, VERSION
from llmroute.testing.load_emitter import LoadEmitter
from llmroute_dev.procs import wait_for
from llmroute_dev.prometheus import Series

NAMESPACES = 4


def _history(keys: list[str], days: int, now: float) -> tuple[Series, ...]:
    start = int(now // 60 * 60) - days * 86400
    out = []
    for i, key in enumerate(keys):
        rate, total, samples = 5.0 + i % 20, 0.0, []
        for ts in range(start, int(now // 60 * 60) - 60, 60):
            total += rate * 60 * (1.2 + 0.8 * ((ts // 3600) % 24 >= 8))
            samples.append((float(ts), round(total)))
        labels = {
            "route": key,
            "tier": "default",
            "upstream": "a",
            "code": "200",
            "cache": "miss",
            "pod": "h",
        }
        out.append(Series("llmroute_requests", labels, samples, kind="counter"))
    return tuple(out)


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(llmroute_operator_\w+?)(\{[^}]*\})? ([0-9.eE+-]+)$", line)
        if m and not m.group(2):
            out[m.group(1)] = float(m.group(3))
    return out


def _route(name: str, i: int) -> dict[str, object]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMRoute",
        "metadata": {"name": name},
        "spec": {
            "reconcileIntervalSeconds": 30,
            "proxy": {"minReplicas": 1, "maxReplicas": 20},
            "upstreams": [{"name": "a", "url": "http://127.0.0.1:9/v1", "model": "m"}],
            "scaling": {"metric": {"targetPerReplica": 10 + i % 7}},
            "rateLimits": {"tiers": [{"name": "std", "requestsPerMinute": 6000}]},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--routes", type=int, default=200)
    parser.add_argument("--history-days", type=int, default=7)
    parser.add_argument("--measure-seconds", type=float, default=120)
    args = parser.parse_args()
    names = [(f"bench-{i % NAMESPACES}", f"r{i:03d}") for i in range(args.routes)]
    keys = [f"{ns}/{name}" for ns, name in names]
    started = time.time()
    with environment(backfill=_history(keys, args.history_days, started)) as bench:
        backfill_seconds = time.time() - started
        emitter = LoadEmitter().start()
        bench.env.prometheus.set_targets([emitter.target])
        for i, key in enumerate(keys):
            emitter.set(key, rps=5.0 + i % 20, upstreams={"a": {"share": 1.0}})
        for n in range(NAMESPACES):
            namespace(bench.api, f"bench-{n}")
        op = start_operator(bench, [], LLMROUTE_RATE_WINDOW="2m", LLMROUTE_METRICS_INTERVAL_SECONDS="15")
        assert op.pid is not None
        port = int(op.env["LLMROUTE_METRICS_PORT"]) if op.env else 0
        custom = client.CustomObjectsApi(bench.api)
        try:
            small = min(10, args.routes)
            for i, (ns, name) in enumerate(names[:small]):
                custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, _route(name, i))
            few = _steady(port, op.pid, 45)
            for i, (ns, name) in enumerate(names[small:], start=small):
                custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, _route(name, i))
            _all_ready(custom, names)
            many = _steady(port, op.pid, args.measure_seconds)
        finally:
            op.stop()
            emitter.stop()
    print(
        json.dumps(
            {
                "benchmark": "operator at scale",
                "routes": args.routes,
                "history_days": args.history_days,
                "backfill_and_start_seconds": round(backfill_seconds, 1),
                "with_10_routes": few,
                f"with_{args.routes}_routes": many,
                "target_rss_mb": 150,
                "ok": many["rss_mb_max"] < 150 and many["queries_per_cycle"] <= few["queries_per_cycle"],
            },
            indent=2,
        )
    )


def _all_ready(custom: client.CustomObjectsApi, names: list[tuple[str, str]]) -> None:
    def ready() -> bool:
        items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
        done = [o for o in items if (o.get("status") or {}).get("observedGeneration")]
        return len(done) >= len(names)

    wait_for(ready, timeout=600, what="every route reconciled", interval=2)


def _steady(port: int, pid: int, seconds: float) -> dict[str, float]:
    wait_for(
        lambda: _scrape(port).get("llmroute_operator_metrics_cycles_total", 0) >= 2,
        timeout=120,
        what="cycles",
    )
    before, cpu0, t0 = _scrape(port), cpu_seconds(pid), time.monotonic()
    rss = []
    while time.monotonic() - t0 < seconds:
        rss.append(rss_mb(pid))
        time.sleep(2)
    after, cpu1, t1 = _scrape(port), cpu_seconds(pid), time.monotonic()
    cycles = (
        after["llmroute_operator_metrics_cycles_total"] - before["llmroute_operator_metrics_cycles_total"]
    )
    queries = (
        after["llmroute_operator_prometheus_queries_total"]
        - before["llmroute_operator_prometheus_queries_total"]
    )
    reconciles = (
        after["llmroute_operator_reconcile_duration_seconds_count"]
        - before["llmroute_operator_reconcile_duration_seconds_count"]
    )
    reconcile_time = (
        after["llmroute_operator_reconcile_duration_seconds_sum"]
        - before["llmroute_operator_reconcile_duration_seconds_sum"]
    )
    return {
        "metrics_cycles": cycles,
        "queries_per_cycle": round(queries / cycles, 2) if cycles else float("nan"),
        "metrics_cycle_seconds_last": round(after["llmroute_operator_metrics_cycle_seconds"], 3),
        "reconciles": reconciles,
        "reconcile_seconds_mean": round(reconcile_time / reconciles, 4) if reconciles else float("nan"),
        "rss_mb_max": round(max(rss), 1),
        "cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
    }


if __name__ == "__main__":
    main()
