"""The operator through outages and restarts: Prometheus down, operator restarted, invalid specs, and
predictive pre-scaling from backfilled history."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION
from llmroute.testing.load_emitter import LoadEmitter
from llmroute_dev.controlplane import ControlPlane
from llmroute_dev.prometheus import Prometheus, Series
from llmroute_dev.session import install_crd
from tests.cluster.conftest import StartOperator
from tests.cluster.operator_env import (
    ROOT,
    condition,
    events,
    get_route,
    later_than,
    launch,
    replicas,
    route_object,
)
from tests.kube import create_route, deployment, eventually


@pytest.fixture
def own_prometheus(tmp_path: Path, emitter: LoadEmitter) -> Iterator[Prometheus]:
    prom = Prometheus(tmp_path / "prom").start()
    prom.set_targets([emitter.target])
    try:
        yield prom
    finally:
        prom.stop()


def test_prometheus_outage_never_scales_down_and_recovers(
    api_client: client.ApiClient,
    namespace: str,
    start_operator: StartOperator,
    emitter: LoadEmitter,
    own_prometheus: Prometheus,
) -> None:
    route = f"{namespace}/out"
    emitter.set(route, rps=60)
    start_operator(namespace, prometheus_url=own_prometheus.url)
    create_route(api_client, namespace, route_object("out"))
    eventually(lambda: replicas(api_client, namespace, "out-proxy") >= 6, timeout=90, what="scaled to 6")

    own_prometheus.stop()
    emitter.set(route, rps=5)

    def unavailable() -> bool:
        cond = condition(get_route(api_client, namespace, "out"), "MetricsAvailable")
        return bool(cond and cond["status"] == "False")

    eventually(unavailable, timeout=60, what="MetricsAvailable=False")
    cond = condition(get_route(api_client, namespace, "out"), "MetricsAvailable")
    assert cond is not None and cond["reason"] == "PrometheusUnavailable"
    held_since = time.monotonic()
    while time.monotonic() - held_since < 30:  # longer than the 20 s scale-down window
        assert replicas(api_client, namespace, "out-proxy") >= 6, "scaled down without data"
        time.sleep(1)
    assert len(events(api_client, namespace, "MetricsUnavailable")) == 1  # once, not every cycle

    own_prometheus.start()  # same port, same data directory

    def available() -> bool:
        cond = condition(get_route(api_client, namespace, "out"), "MetricsAvailable")
        return bool(cond and cond["status"] == "True")

    eventually(available, timeout=90, what="MetricsAvailable=True again")
    eventually(
        lambda: events(api_client, namespace, "MetricsRecovered"), timeout=20, what="MetricsRecovered event"
    )
    eventually(
        lambda: replicas(api_client, namespace, "out-proxy") == 1,
        timeout=120,
        what="scale down after recovery",
    )


def _fingerprint(api: client.ApiClient, ns: str, name: str) -> dict[str, object]:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    deployment = apps.read_namespaced_deployment(f"{name}-proxy", ns)
    return {
        "deployment.generation": deployment.metadata.generation,
        "deployment.replicas": deployment.spec.replicas,
        "configmap": core.read_namespaced_config_map(f"{name}-proxy-config", ns).metadata.resource_version,
        "service": core.read_namespaced_service(f"{name}-proxy", ns).metadata.resource_version,
    }


def test_operator_restart_makes_no_spurious_writes(
    api_client: client.ApiClient, namespace: str, start_operator: StartOperator, emitter: LoadEmitter
) -> None:
    route = f"{namespace}/steady"
    # 22 req/s needs 3 replicas of 10 both bare and with any burst margin up to the cold one (x1.25), so
    # the steady state does not depend on how much history the margin has seen yet
    emitter.set(route, rps=22)
    op = start_operator(namespace)
    create_route(api_client, namespace, route_object("steady"))
    eventually(lambda: replicas(api_client, namespace, "steady-proxy") == 3, timeout=90, what="steady at 3")

    def settled() -> dict[str, Any] | None:
        # steady means the measured load has stopped ramping (the rate window must fill first): a restart
        # during the ramp may legitimately see the trend and add a replica
        obj = get_route(api_client, namespace, "steady")
        rps = obj.get("status", {}).get("load", {}).get("requestsPerSecond")
        return obj if rps is not None and abs(rps - 22) <= 1.1 else None

    obj = eventually(settled, timeout=60, what="load measured at 22 req/s")
    obj = later_than(api_client, namespace, "steady", obj["status"]["load"]["time"])
    assert replicas(api_client, namespace, "steady-proxy") == 3
    before = _fingerprint(api_client, namespace, "steady")

    op.restart()
    stamp = obj["status"]["load"]["time"]
    obj = later_than(api_client, namespace, "steady", stamp, timeout=90)
    obj = later_than(api_client, namespace, "steady", obj["status"]["load"]["time"], timeout=30)
    assert _fingerprint(api_client, namespace, "steady") == before
    assert not events(api_client, namespace, "Created")[1:], "children re-created after restart"


def test_invalid_spec_past_the_schema_is_reported_once_without_writes(
    api_client: client.ApiClient, control_plane: ControlPlane, namespace: str, start_operator: StartOperator
) -> None:
    # an older CRD without the min/max rule lets an invalid spec in, as an upgrade in progress would
    crd_path = ROOT / "crds" / "llmroute.io_llmroutes.yaml"
    loose = yaml.safe_load(crd_path.read_text())
    proxy = loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "proxy"
    ]
    proxy.pop("x-kubernetes-validations")
    loose_path = crd_path.with_name("loose.yaml")
    try:
        loose_path.write_text(yaml.safe_dump(loose))
        install_crd(control_plane.kubeconfig, loose_path)
        bad = route_object("bad", proxy={"minReplicas": 5, "maxReplicas": 2})
        # the apiserver swaps in the new schema asynchronously: until it does, the old rule still answers 422
        eventually(lambda: create_route(api_client, namespace, bad), timeout=30, what="the loose CRD served")
    finally:
        loose_path.unlink(missing_ok=True)
        install_crd(control_plane.kubeconfig, crd_path)
    start_operator(namespace)

    def invalid() -> dict[str, object] | None:
        cond = condition(get_route(api_client, namespace, "bad"), "Ready")
        return cond if cond and cond["reason"] == "InvalidSpec" else None

    cond = eventually(invalid, timeout=60, what="InvalidSpec condition")
    assert "minReplicas" in str(cond["message"])
    apps = client.AppsV1Api(api_client)
    watch_until = time.monotonic() + 15  # three reconcile intervals: no retry storm, no writes
    while time.monotonic() < watch_until:
        assert len(events(api_client, namespace, "InvalidSpec")) <= 1, "reported again and again"
        assert apps.list_namespaced_deployment(namespace).items == [], (
            "wrote a Deployment for an invalid spec"
        )
        time.sleep(1)
    assert len(events(api_client, namespace, "InvalidSpec")) == 1


def _daily_history(route: str, now: float, ramp_at: float, days: int) -> Series:
    """Per-minute counter: 5 req/s, and 80 req/s for 40 minutes from ``ramp_at``'s time of day, daily."""
    samples, total = [], 0.0
    start = int(now // 60 * 60) - days * 86400
    ramp_tod = ramp_at % 86400
    for ts in range(start, int(now // 60 * 60) - 120, 60):
        tod = ts % 86400
        in_ramp = 0 <= (tod - ramp_tod) % 86400 < 40 * 60
        total += (80.0 if in_ramp else 5.0) * 60
        samples.append((float(ts), total))
    labels = {
        "route": route,
        "tier": "default",
        "upstream": "primary",
        "code": "200",
        "cache": "miss",
        "pod": "history",
    }
    return Series("llmroute_requests", labels, samples, kind="counter")


def test_predictive_prescales_before_a_daily_ramp(
    api_client: client.ApiClient,
    namespace: str,
    start_operator: StartOperator,
    emitter: LoadEmitter,
    tmp_path: Path,
) -> None:
    route = f"{namespace}/pred"
    now = time.time()
    ramp_at = now + 8 * 60  # the daily surge starts in 8 minutes
    prom = Prometheus(tmp_path / "prom", backfill=[_daily_history(route, now, ramp_at, days=3)]).start()
    try:
        prom.set_targets([emitter.target])
        emitter.set(route, rps=5)
        start_operator(
            # the backfilled history has one sample a minute: on Prometheus 3 (left-open ranges) a window must
            # span two of them
            namespace,
            prometheus_url=prom.url,
            LLMROUTE_HISTORY_STEP_SECONDS="60",
            LLMROUTE_RATE_WINDOW="2m",
        )
        spec = route_object(
            "pred",
            scaling={
                "predictive": {
                    "enabled": True,
                    "leadTimeSeconds": 600,
                    "minHistoryHours": 48,
                    "lookbackDays": 7,
                }
            },
        )
        create_route(api_client, namespace, spec)

        def prescaled() -> dict[str, Any] | None:
            # the Deployment is written before the status of the same cycle: wait for both
            if replicas(api_client, namespace, "pred-proxy") < 6:
                return None
            status: dict[str, Any] = get_route(api_client, namespace, "pred").get("status") or {}
            forecast = status.get("forecast") or {}
            return status if forecast.get("active") is True else None

        status = eventually(prescaled, timeout=240, what="pre-scaled for the ramp, the status saying why")
        assert time.time() < ramp_at, "scaled only once the ramp had started"
        assert (status["recommendation"].get("predictive") or 0) >= 6
        assert status["load"]["requestsPerSecond"] < 10  # current load alone would need one replica
        assert math.isfinite(status["forecast"]["value"])
    finally:
        prom.stop()


def test_apiserver_restart_is_survived(
    api_client: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    start_operator: StartOperator,
    emitter: LoadEmitter,
) -> None:
    route = launch(api_client, namespace, start_operator, emitter, "rs")
    control_plane.restart_apiserver()  # watches break, in-flight calls fail: the operator must carry on
    emitter.set(route, rps=40)
    eventually(
        lambda: replicas(api_client, namespace, "rs-proxy") >= 4, timeout=120, what="scaled after restart"
    )
    patch = {"spec": {"proxy": {"minReplicas": 7}}}
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "rs", patch
    )
    eventually(
        lambda: replicas(api_client, namespace, "rs-proxy") >= 7, timeout=60, what="spec change after restart"
    )


def test_existing_deployment_is_only_scaled(
    api_client: client.ApiClient, namespace: str, start_operator: StartOperator, emitter: LoadEmitter
) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("gateway", image="example.invalid/gw:1"))
    route = f"{namespace}/own"
    emitter.set(route, rps=50)
    start_operator(namespace)
    create_route(api_client, namespace, route_object("own", proxy={"deploymentName": "gateway"}))
    eventually(
        lambda: replicas(api_client, namespace, "gateway") >= 5, timeout=90, what="existing Deployment scaled"
    )
    current = apps.read_namespaced_deployment("gateway", namespace)
    assert current.spec.template.spec.containers[0].image == "example.invalid/gw:1"  # template untouched
    assert not current.metadata.owner_references  # not adopted: it is the user's
    names = {d.metadata.name for d in apps.list_namespaced_deployment(namespace).items}
    assert names == {"gateway"}
    services = client.CoreV1Api(api_client).list_namespaced_service(namespace).items
    assert services == []
    client.CoreV1Api(api_client).read_namespaced_config_map(
        "own-proxy-config", namespace
    )  # the config is ours
