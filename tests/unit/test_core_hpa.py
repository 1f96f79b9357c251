"""The Kubernetes HPA algorithm: tolerance band, stabilisation windows, step policies, bounds."""

from __future__ import annotations

import pytest

from llmroute.core import hpa
from llmroute.core.hpa import Memory, Policy, Rules
from tests.unit.core_helpers import scaling_spec

UP = Rules(0, "Max", (Policy("Percent", 100, 15), Policy("Pods", 4, 15)))
DOWN = Rules(300, "Max", (Policy("Percent", 100, 15),))


@pytest.mark.parametrize(
    ("load", "current", "expected"),
    [
        (400.0, 10, 10),  # exactly on target
        (430.0, 10, 10),  # +7.5 %: inside the 10 % band
        (439.0, 10, 10),  # +9.75 %: still inside
        (441.0, 10, 12),  # just outside: ceil(441 / 40)
        (361.0, 10, 10),  # -9.75 %: inside
        (359.0, 10, 9),  # outside below: ceil(359 / 40)
        (0.0, 10, 0),
        (100.0, 0, 3),  # no replicas: plain ceil
    ],
)
def test_usage_ratio_and_tolerance(load: float, current: int, expected: int) -> None:
    assert hpa.usage_desired(load, 40.0, current, 0.1) == expected


def test_scale_down_waits_for_the_highest_recommendation_in_the_window() -> None:
    memory = Memory()
    got = []
    for minute, proposal in enumerate([10, 6, 6, 6, 6, 6, 6]):
        replicas, memory = hpa.stabilize(memory, 60.0 * minute, 10, proposal, UP, DOWN, 300)
        got.append(replicas)
    # 10 was recommended at t=0; the window is 300 s (strictly after the cut-off), so it holds until t=300
    assert got == [10, 10, 10, 10, 10, 6, 6]


def test_scale_up_window_takes_the_lowest_recommendation() -> None:
    up = Rules(120, "Max", UP.policies)
    memory = Memory()
    got = []
    for minute, proposal in enumerate([5, 9, 9, 9]):
        replicas, memory = hpa.stabilize(memory, 60.0 * minute, 5, proposal, up, DOWN, 300)
        got.append(replicas)
    # at t=120 the first recommendation (t=0) is exactly at the cut-off and no longer counts
    assert got == [5, 5, 9, 9]


@pytest.mark.parametrize(
    ("rules", "current", "events", "elapsed", "expected"),
    [
        (UP, 10, (), 15.0, 20),  # Max of +100 % and +4 pods
        (UP, 2, (), 15.0, 6),  # +4 pods beats doubling at small counts
        (Rules(0, "Min", UP.policies), 10, (), 15.0, 14),  # Min picks the smaller change
        (Rules(0, "Disabled", UP.policies), 10, (), 15.0, 10),
        (Rules(0, "Max", (Policy("Pods", 4, 60),)), 10, ((0.0, 3),), 30.0, 11),  # 3 already added in period
        (UP, 10, (), 60.0, 160),  # a minute since the last decision: the 15 s policy applies 4 times
    ],
)
def test_scale_up_limit(
    rules: Rules, current: int, events: tuple[tuple[float, int], ...], elapsed: float, expected: int
) -> None:
    memory = Memory(events=events, last_time=0.0)
    assert hpa.scale_up_limit(memory, elapsed, current, rules) == expected


@pytest.mark.parametrize(
    ("rules", "current", "expected"),
    [
        (Rules(300, "Max", (Policy("Percent", 50, 60),)), 10, 5),
        (Rules(300, "Max", (Policy("Pods", 2, 60), Policy("Percent", 50, 60))), 10, 5),  # Max = biggest drop
        (Rules(300, "Min", (Policy("Pods", 2, 60), Policy("Percent", 50, 60))), 10, 8),
        (Rules(300, "Disabled", (Policy("Pods", 2, 60),)), 10, 10),
    ],
)
def test_scale_down_limit(rules: Rules, current: int, expected: int) -> None:
    assert hpa.scale_down_limit(Memory(last_time=0.0), 60.0, current, rules) == expected


@pytest.mark.parametrize(
    ("current", "desired", "lo", "hi", "expected", "reasons"),
    [
        (10, 30, 1, 100, 20, ["scaleUpPolicy"]),
        (10, 30, 1, 15, 15, ["maxReplicas"]),
        (10, 0, 2, 100, 2, ["minReplicas"]),
        (10, 12, 1, 100, 12, []),
        (12, 12, 1, 10, 10, ["maxReplicas"]),
    ],
)
def test_normalize_applies_policies_then_bounds(
    current: int, desired: int, lo: int, hi: int, expected: int, reasons: list[str]
) -> None:
    up = Rules(0, "Max", (Policy("Percent", 100, 60),))
    limited = hpa.normalize(Memory(last_time=0.0), 60.0, current, desired, up, DOWN, lo, hi)
    assert (limited.replicas, limited.limited_by) == (expected, reasons)


def test_hpa_step_follows_load_and_holds_scale_down() -> None:
    params = hpa.HpaParams.from_spec(scaling_spec(target=40.0))
    memory = Memory()
    current = 10
    trail = []
    for minute, load in enumerate([400, 800, 800, 400, 400, 400, 400, 400, 400]):
        current, memory = hpa.hpa_step(params, 60.0 * (minute + 1), current, float(load), memory)
        trail.append(current)
    assert trail == [10, 20, 20, 20, 20, 20, 20, 10, 10]


def test_memory_round_trips_and_tolerates_garbage() -> None:
    memory = Memory(((1.0, 3), (2.0, 4)), ((1.0, 1),), 2.0)
    assert Memory.from_dict(memory.to_dict()) == memory
    assert Memory.from_dict({"recs": "x", "events": [[1, "a"], [2]], "last": "now"}) == Memory()


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (Policy("Percent", 100, 15), hpa.MAX_COUNT),  # 2**(86400 / 15) overflows a float
        (Policy("Percent", 1500, 60), hpa.MAX_COUNT),  # x16 a minute for a day
        (Policy("Pods", 4, 15), 2 + 4 * (86400 // 15)),
    ],
)
def test_scale_up_limit_after_a_long_pause_is_a_count_not_an_overflow(policy: Policy, expected: int) -> None:
    """A route decided again a day after its last decision (an operator down, a route paused) compounds
    its Percent policy over every period since: the limit saturates at the int32 cap instead of raising
    OverflowError and leaving the route undecided; normalize then bounds it by maxReplicas."""
    rules = Rules(0, "Max", (policy,))
    memory = Memory(last_time=0.0)
    assert hpa.scale_up_limit(memory, 86400.0, 2, rules) == expected
    down = Rules(300, "Max", (Policy("Percent", 100, 15),))
    assert hpa.normalize(memory, 86400.0, 2, 50, rules, down, 1, 40).replicas == 40


def test_count_caps_a_ratio_beyond_int32_and_keeps_exact_ratios() -> None:
    assert hpa.count(float("inf")) == hpa.MAX_COUNT
    assert hpa.count(1e300) == hpa.MAX_COUNT
    assert hpa.count(3.0000000001) == 3  # an exact ratio with float noise does not round up
    assert hpa.count(3.01) == 4
    assert hpa.count(0.0) == 0
