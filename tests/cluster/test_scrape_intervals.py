"""The operator at the scrape intervals people run (30 s, and the 60 s default of the community
Prometheus chart): told the interval, it takes its rates over four scrapes and scales; told a shorter
one than Prometheus really uses, it says so on the route instead of sitting silently without load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from llmroute.testing.load_emitter import LoadEmitter
from llmroute_dev.prometheus import Prometheus
from tests.cluster.conftest import StartOperator
from tests.cluster.operator_env import condition, events, get_route, replicas, route_object
from tests.kube import create_route, eventually


def _prometheus(tmp_path: Path, emitter: LoadEmitter, interval: str) -> Iterator[Prometheus]:
    prom = Prometheus(tmp_path / f"prom-{interval}", scrape_interval=interval).start()
    prom.set_targets([emitter.target])
    try:
        yield prom
    finally:
        prom.stop()


@pytest.fixture
def prometheus_30s(tmp_path: Path, emitter: LoadEmitter) -> Iterator[Prometheus]:
    yield from _prometheus(tmp_path, emitter, "30s")


@pytest.fixture
def prometheus_60s(tmp_path: Path, emitter: LoadEmitter) -> Iterator[Prometheus]:
    yield from _prometheus(tmp_path, emitter, "60s")


def _scales(
    api: client.ApiClient,
    namespace: str,
    start: StartOperator,
    emitter: LoadEmitter,
    prom: Prometheus,
    seconds: int,
    *,
    told: int | None = None,
) -> None:
    """The route scales for 60 req/s; the operator is told ``told`` seconds (default ``seconds``), and
    a ``told`` that differs leaves the real interval to the route's
    ``spec.prometheus.scrapeIntervalSeconds``."""
    emitter.set(f"{namespace}/scrape", rps=60)
    # no LLMROUTE_RATE_WINDOW: the window is derived from the scrape interval the operator is told
    start(
        namespace,
        prometheus_url=prom.url,
        LLMROUTE_RATE_WINDOW="",
        LLMROUTE_SCRAPE_INTERVAL_SECONDS=str(told or seconds),
    )
    overrides: dict[str, Any] = {}
    if told is not None and told != seconds:
        overrides["prometheus"] = {"scrapeIntervalSeconds": seconds}
    create_route(api, namespace, route_object("scrape", **overrides))
    eventually(
        lambda: replicas(api, namespace, "scrape-proxy") >= 5, timeout=5 * seconds, what="scaled for 60 req/s"
    )

    # the replicas are written before the status of the same cycle: wait for the status to say why
    def available() -> bool:
        cond = condition(get_route(api, namespace, "scrape"), "MetricsAvailable") or {}
        return cond.get("status") == "True"

    eventually(available, timeout=2 * seconds, what="MetricsAvailable=True")


def test_scales_at_a_30s_scrape_interval(
    api_client: client.ApiClient,
    namespace: str,
    start_operator: StartOperator,
    emitter: LoadEmitter,
    prometheus_30s: Prometheus,
) -> None:
    _scales(api_client, namespace, start_operator, emitter, prometheus_30s, 30)


def test_a_route_states_its_own_scrape_interval(
    api_client: client.ApiClient,
    namespace: str,
    start_operator: StartOperator,
    emitter: LoadEmitter,
    prometheus_30s: Prometheus,
) -> None:
    """The operator assumes 5 s scrapes (a 20 s window: empty at 30 s scrapes); the route says 30 s."""
    _scales(api_client, namespace, start_operator, emitter, prometheus_30s, 30, told=5)


def test_scales_at_a_60s_scrape_interval_and_names_a_window_too_short(
    api_client: client.ApiClient,
    namespace: str,
    start_operator: StartOperator,
    emitter: LoadEmitter,
    prometheus_60s: Prometheus,
) -> None:
    # a second route whose operator believes Prometheus scrapes every 15 s: a 1m window, one sample in it
    other = f"{namespace}-short"
    client.CoreV1Api(api_client).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=other))
    )
    try:
        emitter.set(f"{other}/short", rps=60)
        start_operator(
            other,
            prometheus_url=prometheus_60s.url,
            LLMROUTE_RATE_WINDOW="",
            LLMROUTE_SCRAPE_INTERVAL_SECONDS="15",
        )
        create_route(api_client, other, route_object("short"))
        _scales(api_client, namespace, start_operator, emitter, prometheus_60s, 60)

        def too_short() -> dict[str, Any] | None:
            cond = condition(get_route(api_client, other, "short"), "MetricsAvailable")
            return cond if cond and cond["reason"] == "RateWindowTooShort" else None

        cond = eventually(too_short, timeout=360, what="RateWindowTooShort")
        assert cond["status"] == "False" and "60s rate window" in cond["message"]
        # the operator writes the condition, then records the Event: wait for the Event too
        warned = eventually(
            lambda: events(api_client, other, "MetricsUnavailable"),
            timeout=30,
            what="MetricsUnavailable Event",
        )
        assert all("rate window" in e.message for e in warned), [e.message for e in warned]
        assert replicas(api_client, other, "short-proxy") == 1  # nothing decided on data it cannot see
    finally:
        client.CoreV1Api(api_client).delete_namespace(other)
        emitter.state.update({f"{other}/short": None})
