"""Session fixtures: a real control plane (etcd + kube-apiserver + kube-controller-manager) and a real
Prometheus, each started once on loopback, a fresh namespace per test, logs kept and shown on failure."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from llmroute_dev.controlplane import ControlPlane
from llmroute_dev.prometheus import Prometheus
from llmroute_dev.session import install_crd

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / "out" / "test-logs"
_FAILED: list[str] = []
_ENVS: list[ControlPlane | Prometheus] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _ENVS:
        _FAILED.append(item.nodeid)
        for env in _ENVS:
            for name, text in _tails(env).items():
                report.sections.append((f"{name} log (tail)", text))
    return report


def _tails(env: ControlPlane | Prometheus) -> dict[str, str]:
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


# tier -> (the directory under tests/ that holds it, per-test timeout in seconds: setup + call + teardown,
# so the first test of a tier also pays for its session fixtures, e.g. starting the control plane)
TIERS: dict[str, tuple[str, float]] = {
    "unit": ("unit", 30),
    "proxy": ("proxy", 60),
    "prometheus": ("metrics", 180),
    "cluster": ("cluster", 600),
    "node": ("node", 1500),  # the first node test builds the image and starts the node
}
FAST_TIERS = ("unit", "proxy")  # what a bare `pytest` runs


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tiers",
        default=None,
        help=(
            f"comma-separated tiers to run, of {', '.join(TIERS)}, or 'all'. Default: {','.join(FAST_TIERS)} "
            "when pytest is given no paths and no -m; every tier of the tests named on the command line "
            "or chosen by -m. `make test` runs all."
        ),
    )


def _selected_tiers(config: pytest.Config) -> set[str]:
    option: str | None = config.getoption("--tiers")
    if option is None:
        named = config.args_source is pytest.Config.ArgsSource.ARGS
        return set(TIERS) if named or config.getoption("markexpr") else set(FAST_TIERS)
    chosen = set(TIERS) if option == "all" else {t.strip() for t in option.split(",") if t.strip()}
    if unknown := chosen - set(TIERS):
        raise pytest.UsageError(
            f"--tiers: unknown tier(s) {', '.join(sorted(unknown))}; known: {', '.join(TIERS)}"
        )
    return chosen


def _tier(item: pytest.Item) -> str:
    parts = item.path.relative_to(ROOT / "tests").parts
    for tier, (directory, _) in TIERS.items():
        if parts[0] == directory:
            return tier
    raise pytest.UsageError(f"{item.nodeid}: every test lives in a tier directory ({', '.join(TIERS)})")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier (by directory) and the tier's timeout; keep only the selected tiers."""
    chosen = _selected_tiers(config)
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        tier = _tier(item)
        item.add_marker(getattr(pytest.mark, tier))
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIERS[tier][1]))
        (kept if tier in chosen else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> str:
    chosen = _selected_tiers(config)
    left = [t for t in TIERS if t not in chosen]
    return f"tiers: {', '.join(t for t in TIERS if t in chosen)}" + (
        f" (not run: {', '.join(left)}; --tiers all runs every tier)" if left else ""
    )
