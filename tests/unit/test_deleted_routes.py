"""The operator forgets deleted routes: the metrics hub's numbers, days of history and Prometheus source,
the reconciler's failure memory. None may stay for the operator's lifetime (route churn over weeks would
grow it without bound), nor carry over to a new route of the same name."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import REGISTRY

from llmroute.controller.history import HistoryBuffer
from llmroute.controller.hub import MetricsHub, Registration
from llmroute.controller.reconcile import Reconciler
from llmroute.controller.settings import OperatorSettings
from llmroute.core.observed import RouteMetrics
from llmroute.decide.report import Event
from llmroute.k8s.failures import Failure
from llmroute.k8s.routes import RouteStatusWriter
from llmroute.k8s.workload import Workload
from llmroute.prom.queries import RouteQueries


def _closed_port() -> int:
    """A loopback port nothing listens on: every query is refused at once (no network needed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prom_url() -> str:
    return f"http://127.0.0.1:{_closed_port()}"


def _reg(key: str, url: str, metric: str = "rps", window: str = "240s") -> Registration:
    return Registration(key, url, window, metric, 300, 7, RouteQueries())  # type: ignore[arg-type]


def _remember(hub: MetricsHub, reg: Registration) -> None:
    """What a successful cycle leaves for ``reg``: its numbers, a history buffer, the backfill mark."""
    source = hub.sources[reg.source]
    source.metrics[reg.key] = RouteMetrics(0.0, {}, {})
    buf = source.histories[(reg.metric, reg.key)] = HistoryBuffer(60, 7 * 1440)
    buf.put(0.0, 1.0)
    source.backfilled.add((reg.metric, reg.key))
    if reg.metric == "custom":
        source.fetched_until[f"custom:{reg.key}"] = 0.0


def test_a_deleted_routes_numbers_and_history_are_dropped(prom_url: str) -> None:
    hub = MetricsHub(query_timeout=2.0)
    kept, gone, custom = (
        _reg("ns/kept", prom_url),
        _reg("ns/gone", prom_url),
        _reg("ns/c", prom_url, "custom"),
    )
    for reg in (kept, gone, custom):
        hub.register(reg)
        _remember(hub, reg)
    hub.unregister(gone.key)
    hub.unregister(custom.key)
    hub.cycle()  # Prometheus refuses: the route stays known, the deleted ones are forgotten
    source = hub.sources[kept.source]
    assert source.error is not None
    assert set(source.metrics) == {kept.key}
    assert set(source.histories) == {("rps", kept.key)}
    assert source.backfilled == {("rps", kept.key)}
    assert not [t for t in source.fetched_until if t.startswith("custom:")]


def test_a_route_whose_metric_changed_drops_the_old_history(prom_url: str) -> None:
    hub = MetricsHub(query_timeout=2.0)
    hub.register(_reg("ns/a", prom_url, "rps"))
    _remember(hub, _reg("ns/a", prom_url, "rps"))
    hub.register(_reg("ns/a", prom_url, "tokens"))
    hub.cycle()
    assert ("rps", "ns/a") not in hub.sources[(prom_url, "240s")].histories


def test_history_fetched_up_to_after_now_is_fetched_afresh(prom_url: str) -> None:
    """The operator's clock stepped back an hour (an NTP step after a VM resumed): the history was fetched
    up to an hour ahead and its buffer starts there, so every new sample would fall before it and the route
    would have no load data for an hour. That history is dropped, to be fetched afresh."""
    now = 1_800_000_000.0
    hub = MetricsHub(query_timeout=2.0, clock=lambda: now)
    ahead, kept = _reg("ns/ahead", prom_url), _reg("ns/c", prom_url, "custom")
    for reg in (ahead, kept):
        hub.register(reg)
        _remember(hub, reg)
    source = hub.sources[ahead.source]
    source.fetched_until["rps"] = now + 3600.0
    source.fetched_until["custom:ns/c"] = now - 60.0
    hub.cycle()
    assert "rps" not in source.fetched_until and ("rps", ahead.key) not in source.histories
    assert ("rps", ahead.key) not in source.backfilled
    assert source.fetched_until["custom:ns/c"] == now - 60.0 and ("custom", kept.key) in source.histories


def test_a_source_no_route_reads_is_dropped(prom_url: str) -> None:
    hub = MetricsHub(query_timeout=2.0)
    other = f"http://127.0.0.1:{_closed_port()}"
    hub.register(_reg("ns/a", prom_url))
    hub.register(_reg("ns/b", prom_url))
    hub.unregister("ns/a")
    assert set(hub.sources) == {(prom_url, "240s")}  # still read by ns/b
    hub.register(_reg("ns/b", other))  # moved to another Prometheus
    assert set(hub.sources) == {(other, "240s")}
    hub.register(_reg("ns/b", other, window="60s"))  # and another rate window
    assert set(hub.sources) == {(other, "60s")}
    hub.unregister("ns/b")
    assert hub.sources == {}


def test_a_route_created_again_under_a_deleted_ones_name_gets_its_own_warning(prom_url: str) -> None:
    """The reconciler remembers the failure each route last reported (one Warning Event, not one per
    cycle). A deleted route's entry must go with it: a new route under the same name failing the same way
    is a new failure, and routes deleted over weeks must not stay in memory."""
    api = client.ApiClient(client.Configuration(host=prom_url))  # refuses: the status write fails, reported
    posted: list[Event] = []

    async def emit(body: Mapping[str, Any], event: Event) -> None:
        posted.append(event)

    reconciler = Reconciler(OperatorSettings(), MetricsHub(), Workload(api), RouteStatusWriter(api), emit)
    failure = Failure("Forbidden", False, "deployments.apps is forbidden")

    def body(uid: str) -> dict[str, Any]:
        return {"metadata": {"namespace": "ai", "name": "chat", "uid": uid, "generation": 1}}

    async def run() -> None:
        await reconciler.report_failure(body("first"), failure)
        await reconciler.report_failure(body("first"), failure)  # the same failure again: no new Event
        reconciler.forget("ai/chat")  # the route is deleted
        await reconciler.report_failure(body("second"), failure)

    asyncio.run(run())
    api.close()
    assert [e.reason for e in posted] == ["Forbidden", "Forbidden"]


def test_a_route_deleted_during_a_cycle_leaves_the_cycles_query_count_whole(prom_url: str) -> None:
    """A route is deleted (from the event loop) while a metrics cycle runs in its worker thread, and its
    Prometheus source goes with it. The cycle counts the queries it sent, never less: counting the sources
    again at its end once lost the deleted source's earlier queries, handed the counter a negative number
    (which it refuses) and lost the cycle's figures."""
    gone_url = f"http://127.0.0.1:{_closed_port()}"
    gone, kept = _reg("ns/gone", gone_url), _reg("ns/kept", prom_url)
    deleting = False

    def clock() -> float:  # read once per cycle, after the cycle has begun
        if deleting:
            hub.unregister(gone.key)
        return 1_800_000_000.0

    hub = MetricsHub(query_timeout=2.0, clock=clock)
    for reg in (gone, kept):
        hub.register(reg)
    for _ in range(3):
        hub.cycle()  # the doomed source sends (refused) queries of its own
    gone_sent = hub.sources[gone.source].client.queries_sent
    kept_client = hub.sources[kept.source].client
    kept_before = kept_client.queries_sent
    counted_before = REGISTRY.get_sample_value("llmroute_operator_prometheus_queries_total") or 0.0
    deleting = True
    hub.cycle()
    sent = kept_client.queries_sent - kept_before
    assert 0 < sent < gone_sent  # counting the sources afresh at the end would give sent - gone_sent < 0
    assert gone.source not in hub.sources
    assert hub.last_cycle_queries == sent
    assert REGISTRY.get_sample_value("llmroute_operator_prometheus_queries_total") == counted_before + sent
