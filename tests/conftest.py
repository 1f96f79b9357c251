"""Session fixtures: a real control plane (etcd + kube-apiserver + kube-controller-manager) and a real
Prometheus, each started once on loopback, a fresh namespace per test, logs kept and shown on failure."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from llmroute_dev.controlplane import ControlPlane
from llmroute_dev.prometheus import Prometheus
from llmroute_dev.session import install_crd

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / "out" / "test-logs"
_FAILED: list[str] = []
_ENVS: list[Any] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _ENVS:
        _FAILED.append(item.nodeid)
        for env in _ENVS:
            for name, text in _tails(env).items():
                report.sections.append((f"{name} log (tail)", text))


def _tails(env: Any) -> dict[str, str]:
    if isinstance(env, ControlPlane):
        return env.logs()
    if isinstance(env, Prometheus) and env.process:
        return {"prometheus": env.process.tail(30)}
    return {}


def _keep_logs(workdir: Path) -> None:
    if _FAILED and (workdir / "logs").is_dir():
        dest = LOG_DIR / workdir.name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(workdir / "logs", dest)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    workdir = tmp_path_factory.mktemp("controlplane")
    cp = ControlPlane(workdir).start()
    _ENVS.append(cp)
    try:
        yield cp
    finally:
        _ENVS.remove(cp)
        cp.stop()
        _keep_logs(workdir)


@pytest.fixture(scope="session")
def api_client(control_plane: ControlPlane) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(control_plane.kubeconfig))


@pytest.fixture(scope="session")
def crd_installed(control_plane: ControlPlane) -> None:
    install_crd(control_plane.kubeconfig, ROOT / "crds" / "llmroute.io_llmroutes.yaml")


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        with contextlib.suppress(client.ApiException):
            core.delete_namespace(name)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    workdir = tmp_path_factory.mktemp("prometheus")
    prom = Prometheus(workdir).start()
    _ENVS.append(prom)
    try:
        yield prom
    finally:
        _ENVS.remove(prom)
        prom.stop()
        _keep_logs(workdir)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # cluster/prometheus tests are marked by directory so `make unit` can leave them out
    for item in items:
        path = str(item.path)
        if f"{os.sep}cluster{os.sep}" in path:
            item.add_marker(pytest.mark.cluster)
        if f"{os.sep}metrics{os.sep}" in path:
            item.add_marker(pytest.mark.prometheus)
