"""Every query of every panel of the shipped Grafana dashboard, run against a real Prometheus 3 that scrapes
real ``llmroute proxy`` processes (kept at the Deployment's replicas by the local pod runner, serving the
operator's ConfigMap) in front of fake upstreams, and the real operator; with the dashboard's variables
substituted as Grafana would. Traffic covers what the panels show: three tiers, cache hits, streams, 429s from
a tier limit, 503s from the admission queue, 500s from a broken primary (and the failover that follows).

A query must answer without error and, over the run, hold at least one finite value. Queries on metrics
listed in :data:`PENDING` cannot have data here yet: they run (and must not error) but must stay empty;
when one gets data, the test fails to say so, and its metric leaves the list.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION
from llmroute_dev.monitoring.files import dashboard_targets
from llmroute_dev.monitoring.promql import concrete, metric_names, route_regex
from llmroute_dev.podrunner import PodRunner
from llmroute_dev.procs import Process, free_port, wait_for
from llmroute_dev.prometheus import Prometheus, Series
from tests.cluster.operator_env import OperatorProcess

ROOT = Path(__file__).resolve().parents[2]
NAME = "dash"
RATE_INTERVAL = "10s"  # Grafana's $__rate_interval at a 1 s scrape would be 4 s; 10 s smooths the bursts

# metric -> why it has no data in this harness (yet)
PENDING: dict[str, str] = {
    "container_cpu_usage_seconds_total": "cAdvisor: no kubelet here (tests/node/test_dashboard.py)",
    # the fakes here are plain OpenAI-compatible upstreams, neither engines nor rate-limited hosted APIs;
    # tests/metrics/test_upstream_load.py queries these through Prometheus from fake engines and quotas
    "llmroute_upstream_queue_depth": "no engine metrics from the plain fake upstreams",
    "llmroute_upstream_kv_cache_usage": "no engine metrics from the plain fake upstreams",
    "llmroute_upstream_quota_remaining_ratio": "no x-ratelimit headers from the plain fake upstreams",
    "container_memory_working_set_bytes": "cAdvisor: no kubelet here (tests/node/test_dashboard.py)",
}


@dataclass
class Fake:
    name: str
    process: Process
    base: str


def _fake(name: str, latency: float, workdir: Path) -> Fake:
    port = free_port()
    argv = [sys.executable, "-m", "llmroute.testing.fake_upstream", "--port", str(port)]
    process = Process(
        f"upstream-{name}", [*argv, "--name", name, "--latency", str(latency)], workdir / f"{name}.log"
    )
    return Fake(name, process.start(), f"http://127.0.0.1:{port}")


def _route(namespace: str, fakes: dict[str, Fake]) -> dict[str, Any]:
    spec = {
        "reconcileIntervalSeconds": 5,
        # retries 0: a broken upstream's 500 reaches the client; 2 admission slots: bursts queue and shed
        "proxy": {
            "minReplicas": 2,
            "maxReplicas": 3,
            "retries": 0,
            "maxConcurrency": 2,
            "queueTimeoutSeconds": 0.2,
        },
        "upstreams": [
            {"name": "primary", "url": f"{fakes['primary'].base}/v1", "model": "m", "group": 0},
            {"name": "backup", "url": f"{fakes['backup'].base}/v1", "model": "m", "group": 1},
        ],
        "failover": {
            "windowSeconds": 30,
            "minRequests": 5,
            "cooldownSeconds": 5,
            "maxCooldownSeconds": 20,
            "failbackAfterSeconds": 10,
            "minDwellSeconds": 5,
        },
        "scaling": {
            "metric": {"type": "RequestsPerSecond", "targetPerReplica": 3},
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 5}],
                }
            },
            # a forecast to show (a day of backfilled history: one comparable day, reported, never acted on)
            "predictive": {
                "enabled": True,
                "mode": "ForecastOnly",
                "lookbackDays": 2,  # the buffer spans two days: yesterday's same hour falls inside it
                "minHistoryHours": 1,
                "leadTimeSeconds": 300,
            },
        },
        # API keys, so that llmroute verifies its callers: only those are ever answered from the cache
        "rateLimits": {
            "identity": {"type": "ApiKey"},
            "tiers": [
                {
                    "name": "premium",
                    "priority": 100,
                    "sheddable": False,
                    "tokensPerMinute": 10_000_000,  # never reached: the per-replica token share to show
                    "apiKeysSecretRef": _keys("premium"),
                },
                {
                    "name": "standard",
                    "priority": 10,
                    "requestsPerMinute": 120,
                    "apiKeysSecretRef": _keys("standard"),
                },
                {
                    "name": "batch",
                    "priority": 1,
                    "apiKeysSecretRef": _keys("batch"),
                },  # its bursts meet the queue
            ],
        },
        "cache": {"enabled": True},
        "alerts": {"requestsPerSecondAbove": 1, "latencyP95SecondsAbove": 0.01, "errorRateAbove": 0.01},
    }
    meta = {"name": NAME, "namespace": namespace}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMRoute", "metadata": meta, "spec": spec}


CLIENT_KEYS = {tier: f"sk-dashboard-{tier}" for tier in ("premium", "standard", "batch")}


def _keys(tier: str) -> dict[str, str]:
    return {"name": "client-keys", "key": tier}


async def _traffic(
    endpoints: Callable[[], list[str]], seconds: float, break_primary: Callable[[int], Any]
) -> int:
    """Mixed traffic for ``seconds``: a steady premium/standard mix (every third request a cached one,
    every fifth a stream), a burst of batch requests every 5 s, the primary broken in the middle third."""
    sent = 0

    async def one(session: aiohttp.ClientSession, tier: str, i: int) -> None:
        nonlocal sent
        urls = endpoints()
        body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": f"hello {i}"}]}
        if i % 3 == 0:
            body = {"model": "m", "messages": [{"role": "user", "content": "same"}], "temperature": 0}
        if i % 5 == 0:
            body["stream"] = True
        url = f"{urls[i % len(urls)]}/v1/chat/completions"
        async with session.post(
            url, json=body, headers={"Authorization": f"Bearer {CLIENT_KEYS[tier]}"}
        ) as resp:
            await resp.read()
        sent += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        loop = asyncio.get_running_loop()
        start, i, tasks = loop.time(), 0, []
        broken = False
        while (elapsed := loop.time() - start) < seconds:
            if not broken and seconds / 3 < elapsed < 2 * seconds / 3:
                await break_primary(500)
                broken = True
            elif broken and elapsed >= 2 * seconds / 3:
                await break_primary(200)
                broken = False
            tasks.append(asyncio.create_task(one(session, "premium" if i % 2 else "standard", i)))
            if i % 50 == 0:  # a burst of batch requests: more than the admission slots can take in time
                tasks += [asyncio.create_task(one(session, "batch", i + k)) for k in range(12)]
            i += 1
            await asyncio.sleep(0.1)
        await asyncio.gather(*tasks, return_exceptions=True)
    return sent


def _range(prom: Prometheus, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    try:
        return prom.query_range(expr, start, end, 2)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{expr}: {exc.read().decode()}") from exc


def _finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(v)) for series in result for _, v in series["values"])


@pytest.fixture
def system(
    api_client: client.ApiClient,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    crd_installed: None,
    tmp_path: Path,
) -> Iterator[tuple[Prometheus, PodRunner, dict[str, Fake]]]:
    prom = Prometheus(tmp_path / "prom", backfill=[_history(f"{namespace}/{NAME}", time.time())]).start()
    fakes = {
        name: _fake(name, latency, tmp_path / "upstreams")
        for name, latency in (("primary", 0.3), ("backup", 0.3))
    }
    runner: PodRunner | None = None
    try:
        for fake in fakes.values():
            wait_for(_answering(fake), timeout=30, what=f"fake {fake.name}")
        operator = start_operator(namespace, prometheus_url=prom.url)
        keys = {tier: f"{key}\n" for tier, key in CLIENT_KEYS.items()}
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "client-keys"},
            "stringData": keys,
        }
        client.CoreV1Api(api_client).create_namespaced_secret(namespace, secret)
        client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, _route(namespace, fakes)
        )
        runner = PodRunner(
            api_client,
            namespace,
            f"{NAME}-proxy",
            tmp_path / "pods",
            prom,
            extra_targets=[f"127.0.0.1:{operator.metrics_port}"],
        ).start()
        wait_for(lambda: runner is not None and runner.ready >= 1, timeout=90, what="a ready proxy")
        yield prom, runner, fakes
    finally:
        if runner is not None:
            runner.stop()
        for fake in fakes.values():
            fake.process.stop()
        prom.stop()


def _history(route: str, now: float, hours: int = 26) -> Series:
    """A day and two hours of a steady 2 req/s before the test, so the route's forecast has a past day;
    a sample every 2 s, as the operator's 10 s rate window (1 s scrapes) needs."""
    end = int(now // 60 * 60) - 120
    start = end - hours * 3600
    samples = [(float(ts), 2.0 * (ts - start)) for ts in range(start, end, 2)]
    labels = {"route": route, "tier": "standard", "upstream": "primary", "code": "200", "cache": "miss"}
    return Series("llmroute_requests", labels | {"pod": "history"}, samples, kind="counter")


def _answering(fake: Fake) -> Callable[[], bool]:
    def answers() -> bool:
        fake.process.check_alive()
        with urllib.request.urlopen(f"{fake.base}/v1/models", timeout=2) as resp:
            return bool(resp.status == 200)

    return answers


def test_every_dashboard_query_returns_data(
    system: tuple[Prometheus, PodRunner, dict[str, Fake]], namespace: str
) -> None:
    prom, runner, fakes = system
    route = f"{namespace}/{NAME}"

    async def break_primary(status: int) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{fakes['primary'].base}/_fake/behavior",
                json={"default": {"status": status, "latency": 0.3}},
            ) as resp,
        ):
            resp.raise_for_status()

    start = time.time()
    sent = asyncio.run(_traffic(runner.endpoints, 45, break_primary))
    assert sent > 300

    # the variables: namespace from the route label (regex of the namespace variable), then the route
    regex = re.compile(r"^([^/]+)\/.*")
    routes = _label_values(prom, "route", "llmroute_proxy_config_info")
    assert namespace in {m.group(1) for r in routes if (m := regex.match(r))}
    assert route in _label_values(prom, "route", f'llmroute_proxy_config_info{{route=~"{namespace}/.*"}}')

    queries = dashboard_targets(ROOT)
    assert len(queries) > 40
    missing: list[str] = []
    deadline = time.monotonic() + 60
    for q in queries:
        promql = concrete(q.expr, route=route_regex(route), rate_interval=RATE_INTERVAL)
        pending = sorted(n for n in metric_names(promql) if n in PENDING)
        while True:
            result = _range(prom, promql, start, time.time())  # raises on any query error
            if pending or _finite(result) or time.monotonic() > deadline:
                break
            time.sleep(2)
        if pending:
            assert not result, f"{q.panel} {q.ref_id} has data now: drop {pending} from PENDING"
        elif not _finite(result):
            missing.append(f"{q.panel} {q.ref_id}: {promql}")
    assert not missing, "queries without data:\n" + "\n".join(missing)


def _label_values(prom: Prometheus, label: str, match: str) -> list[str]:
    query = urllib.parse.urlencode({"match[]": match})
    with urllib.request.urlopen(f"{prom.url}/api/v1/label/{label}/values?{query}", timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    values: list[str] = body["data"]
    return values
