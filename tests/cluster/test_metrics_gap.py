"""A metrics gap at steady load never scales down: not while Prometheus is down, not on the first rates
after it is back (their windows reach into the gap and read low), and not until a full scale-down window
of trustworthy data has followed the gap."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from llmroute.testing.load_emitter import LoadEmitter
from llmroute_dev.prometheus import Prometheus, Series
from tests.cluster.conftest import StartOperator
from tests.cluster.operator_env import condition, events, get_route, replicas, route_object
from tests.kube import create_route, eventually

WINDOW = 20  # the test route's scaleDown.stabilizationWindowSeconds


RPS = 45.0  # 10 per replica: five replicas, well inside the band


def _steady_history(route: str, now: float, hours: int = 3) -> Series:
    """The same steady load for the hours before the test, so the route starts warm: its burst margin
    learned, nothing left to settle that could move replicas at unchanged load."""
    start = int(now // 60 * 60) - hours * 3600
    samples = [(float(ts), RPS * (ts - start)) for ts in range(start, int(now // 60 * 60) - 60, 15)]
    labels = {"route": route, "tier": "default", "upstream": "primary", "code": "200", "cache": "miss"}
    return Series("llmroute_requests", labels | {"pod": "history"}, samples, kind="counter")


@pytest.fixture
def gap_prometheus(tmp_path: Path, emitter: LoadEmitter, namespace: str) -> Iterator[Prometheus]:
    history = _steady_history(f"{namespace}/gap", time.time())
    prom = Prometheus(tmp_path / "prom", backfill=[history]).start()
    prom.set_targets([emitter.target])
    try:
        yield prom
    finally:
        prom.stop()


def test_steady_load_through_a_prometheus_outage_is_never_scaled_down(
    api_client: client.ApiClient,
    namespace: str,
    start_operator: StartOperator,
    emitter: LoadEmitter,
    gap_prometheus: Prometheus,
) -> None:
    route = f"{namespace}/gap"
    emitter.set(route, rps=RPS)
    # a 30 s rate window: after the restart, rates reach into the gap for half a minute and read low
    start_operator(namespace, prometheus_url=gap_prometheus.url, LLMROUTE_RATE_WINDOW="30s")
    create_route(api_client, namespace, route_object("gap"))
    eventually(lambda: replicas(api_client, namespace, "gap-proxy") >= 5, timeout=90, what="scaled to 5+")
    settled_since = time.monotonic()
    baseline = replicas(api_client, namespace, "gap-proxy")
    while time.monotonic() - settled_since < WINDOW + 10:  # settled: one more window without a change
        current = replicas(api_client, namespace, "gap-proxy")
        if current != baseline:
            baseline, settled_since = current, time.monotonic()
        time.sleep(1)

    lowest = baseline
    gap_prometheus.stop()
    stopped = time.monotonic()
    while time.monotonic() - stopped < 150:  # a gap of more than two whole minutes of history
        lowest = min(lowest, replicas(api_client, namespace, "gap-proxy"))
        time.sleep(1)
    gap_prometheus.start()  # same port, same data directory

    def available() -> bool:
        cond = condition(get_route(api_client, namespace, "gap"), "MetricsAvailable")
        return bool(cond and cond["status"] == "True")

    eventually(available, timeout=90, what="MetricsAvailable=True again")
    back = time.monotonic()
    while time.monotonic() - back < 60 + 30 + WINDOW + 10:  # the gap's minutes, the window, and more
        lowest = min(lowest, replicas(api_client, namespace, "gap-proxy"))
        time.sleep(1)
    decisions = get_route(api_client, namespace, "gap").get("status", {}).get("history", [])
    assert lowest >= baseline, f"scaled down from {baseline} to {lowest} at unchanged load: {decisions}"
    assert not events(api_client, namespace, "ScaledDown")
