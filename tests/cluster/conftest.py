"""Fixtures for the operator's end-to-end tests: load emitter scraped by Prometheus, the chart's RBAC,
and a factory for operator processes (always stopped, logs attached on failure)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from llmroute.testing.load_emitter import LoadEmitter
from llmroute_dev.controlplane import ControlPlane
from llmroute_dev.prometheus import Prometheus
from tests.cluster.operator_env import OperatorProcess, chart_rbac, mint_kubeconfig

StartOperator = Callable[..., OperatorProcess]
CALL_REPORT = pytest.StashKey[pytest.TestReport]()  # the test's own outcome, for start_operator's teardown


@pytest.fixture(scope="session")
def emitter(prometheus: Prometheus) -> Iterator[LoadEmitter]:
    em = LoadEmitter().start()
    prometheus.set_targets([em.target])
    try:
        yield em
    finally:
        prometheus.set_targets([])
        em.stop()


@pytest.fixture(scope="session")
def operator_kubeconfig(
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    crd_installed: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    sa = chart_rbac(api_client)
    return mint_kubeconfig(control_plane, api_client, sa, tmp_path_factory.mktemp("operator") / "kubeconfig")


@pytest.fixture
def start_operator(
    operator_kubeconfig: Path, prometheus: Prometheus, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StartOperator]:
    started: list[OperatorProcess] = []

    def start(namespace: str, prometheus_url: str | None = None, **env: str) -> OperatorProcess:
        op = OperatorProcess(
            operator_kubeconfig,
            prometheus_url or prometheus.url,
            namespace,
            tmp_path / f"op{len(started)}",
            env,
        ).start()
        started.append(op)
        return op

    try:
        yield start
    finally:
        for op in started:
            op.stop()
        rep = request.node.stash.get(CALL_REPORT, None)
        if rep is not None and rep.failed:
            for op in started:
                print(f"--- operator log ({op.workdir}) ---\n{op.log()}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    if rep.when == "call":
        item.stash[CALL_REPORT] = rep
    return rep
