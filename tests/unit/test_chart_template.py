"""The chart rendered with ``helm template`` alone (no apiserver): values the operator or the apiserver
would refuse, or that would leave the cluster stuck, fail the render naming the value."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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
