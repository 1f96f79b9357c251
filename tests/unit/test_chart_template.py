"""The chart rendered with ``helm template`` alone (no apiserver): values the operator or the apiserver
would refuse, or that would leave the cluster stuck, fail the render naming the value."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmroute_dev.binaries import ensure

CHART = Path(__file__).resolve().parents[2] / "helm" / "llmroute"


def _template(*sets: str) -> subprocess.CompletedProcess[str]:
    helm = ensure(("helm",))["helm"]
    argv = [str(helm), "template", "llmroute", str(CHART), "--namespace", "llmroute-system"]
    for item in sets:
        argv += ["--set", item]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "timing",
    [
        "leaderElection.leaseDurationSeconds=6",  # lease not above the renew deadline (6)
        "leaderElection.leaseDurationSeconds=5",
        "leaderElection.retryPeriodSeconds=5",  # renew deadline 6 not above 1.2 x 5
        "leaderElection.renewDeadlineSeconds=1",  # not above 1.2 x retry 1
    ],
)
def test_leader_election_timing_the_operator_refuses_fails_the_render(timing: str) -> None:
    """The operator exits at start on these (LeaderSettings), so every pod would crash-loop."""
    out = _template(timing)
    assert out.returncode != 0, out.stdout[:200]
    assert "leaseDurationSeconds > renewDeadlineSeconds > 1.2 x retryPeriodSeconds" in out.stderr, out.stderr


@pytest.mark.parametrize(
    "timing",
    [
        "leaderElection.leaseDurationSeconds=15,leaderElection.renewDeadlineSeconds=10,"
        "leaderElection.retryPeriodSeconds=2",
        "leaderElection.leaseDurationSeconds=3,leaderElection.renewDeadlineSeconds=2",
        # without leader election the timing is not used
        "leaderElection.enabled=false,leaderElection.leaseDurationSeconds=5",
    ],
)
def test_leader_election_timing_the_operator_accepts_renders(timing: str) -> None:
    out = _template(timing)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("value", ["0", "-1", "0%", "abc", "101%"])
def test_a_disruption_budget_that_blocks_drains_or_is_invalid_is_refused(value: str) -> None:
    """maxUnavailable 0 (or 0%) blocks every drain of a node an operator pod runs on; a negative count or a
    word is refused by the apiserver halfway through the install."""
    out = _template("replicaCount=2", f"podDisruptionBudget.maxUnavailable={value}")
    assert out.returncode != 0, out.stdout[:200]
    assert "/podDisruptionBudget/maxUnavailable" in out.stderr, out.stderr


@pytest.mark.parametrize("value", ["1", "2", "50%", "100%"])
def test_a_disruption_budget_that_lets_a_drain_through_renders(value: str) -> None:
    out = _template("replicaCount=3", f"podDisruptionBudget.maxUnavailable={value}")
    assert out.returncode == 0, out.stderr
    assert f"maxUnavailable: {value}" in out.stdout


def _proxy_image_setting(rendered: str) -> str:
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    return str(env["LLMROUTE_PROXY_IMAGE"])


def _crd_image_field(rendered: str) -> dict[str, Any]:
    crd = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "CustomResourceDefinition")
    node = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for key in ("spec", "proxy", "template", "image"):
        node = node["properties"][key]
    return dict(node)


def _operator_image(rendered: str) -> str:
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.mark.parametrize(
    "sets",
    [
        (),
        ("image.registry=registry.example",),
        ("image.registry=,image.repository=mirror.example/llmroute/llmroute", "image.tag=patched"),
        ("image.registry=registry.example", "image.digest=sha256:" + "a" * 64),
    ],
)
def test_proxies_default_to_the_operator_image(sets: tuple[str, ...]) -> None:
    """A route that names no image runs its proxies on the chart's image (the operator's
    LLMROUTE_PROXY_IMAGE), so a mirror or a pinned digest serves the proxies as well as the operator (an
    air-gapped cluster cannot pull the upstream default). The CRD stores no default in the route: a
    default stored when the route was created would keep its proxies on that image after an upgrade."""
    out = _template(*sets)
    assert out.returncode == 0, out.stderr
    assert _proxy_image_setting(out.stdout) == _operator_image(out.stdout)
    assert "default" not in _crd_image_field(out.stdout)


@pytest.mark.parametrize(
    "url", ["https://llmroute:hunter2@prometheus.example", "http://hunter2@prometheus.monitoring.svc:80"]
)
def test_a_prometheus_url_with_credentials_is_refused(url: str) -> None:
    """They would sit in the operator's pod spec, NOTES and start-up log in plain text: prometheusAuth holds
    them in a Secret."""
    out = _template(f"prometheusUrl={url}")
    assert out.returncode != 0, out.stdout[:200]
    assert "/prometheusUrl" in out.stderr, out.stderr


@pytest.mark.parametrize(
    "url", ["http://prometheus-server.monitoring.svc:80", "https://mimir.example/prometheus/@tenant?a=b@c"]
)
def test_a_prometheus_url_without_credentials_renders(url: str) -> None:
    out = _template(f"prometheusUrl={url}")
    assert out.returncode == 0, out.stderr


def _operator_rules(*sets: str) -> list[dict[str, list[str]]]:
    out = _template(*sets)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    return [
        rule
        for d in docs
        if d["kind"] in ("ClusterRole", "Role") and d["metadata"]["name"] == "llmroute"
        for rule in d["rules"]
    ]


@pytest.mark.parametrize("sets", [(), ("watchNamespaces={team-a,team-b}",)])
def test_events_are_granted_only_where_llmroute_writes_them(sets: tuple[str, ...]) -> None:
    """llmroute's EventRecorder writes events.k8s.io/v1 Events (create, and patch for a series); kopf's own
    posting of core Events is switched off, so the core group's events are not granted."""
    rules = [r for r in _operator_rules(*sets) if "events" in r["resources"]]
    granted = {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}
    assert rules and all(rule == granted for rule in rules), rules


def test_upgrade_commands_in_the_docs_take_this_charts_defaults(tmp_path: Path) -> None:
    """`--reuse-values` keeps the previous chart's defaults as well as the user's values, so every key this
    chart added is missing (rendering this chart over the first published chart's values.yaml fails on a nil
    map); the documented upgrades use `--reset-then-reuse-values`."""
    root = CHART.parents[1]
    docs = [root / "README.md", CHART / "README.md", *sorted((root / "docs").glob("*.md"))]
    commands = [
        line
        for doc in docs
        for line in doc.read_text().splitlines()
        if line.lstrip().startswith("helm upgrade")
    ]
    assert commands
    assert not [c for c in commands if "--reuse-values" in c], commands
    previous = subprocess.run(
        [
            "git",
            "-C",
            str(root),
            "show",
            "d8cba15462935951def4515ccc37f8df9e61ddc1:helm/llmroute/values.yaml",
        ],
        capture_output=True,
        text=True,
    )
    if previous.returncode != 0:
        pytest.skip("the first published chart is not in this checkout's history")
    chart = tmp_path / "llmroute"
    shutil.copytree(CHART, chart)
    (chart / "values.yaml").write_text(previous.stdout)  # what --reuse-values renders this chart with
    helm = ensure(("helm",))["helm"]
    reused = subprocess.run([str(helm), "template", "llmroute", str(chart)], capture_output=True, text=True)
    assert reused.returncode != 0 and "nil pointer" in reused.stderr, reused.stderr


@pytest.mark.parametrize("header", ["Authorization", "authorization", "Proxy-Authorization", "Cookie"])
def test_a_credential_header_for_prometheus_is_refused(header: str) -> None:
    """Headers become a plain environment variable of the operator pod, readable by anyone who may read its
    Deployment: credentials go through prometheusAuth.secretName (mounted files) instead."""
    out = _template(f"prometheusAuth.headers.{header}=Bearer hunter2")
    assert out.returncode != 0, out.stdout[:200]
    assert f"prometheusAuth.headers.{header}" in out.stderr and "secretName" in out.stderr, out.stderr
    assert "hunter2" not in out.stderr


def test_a_tenant_header_for_prometheus_renders() -> None:
    out = _template("prometheusAuth.headers.X-Scope-OrgID=team-a")
    assert out.returncode == 0, out.stderr
    assert "X-Scope-OrgID=team-a" in out.stdout
