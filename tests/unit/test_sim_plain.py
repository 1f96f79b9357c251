"""The plain growth-quantile rule the policy is compared against: causal, sized by the growth quantile,
held by its hysteresis and band, and holding through missing minutes."""

from __future__ import annotations

import numpy as np
from bench.sim_bounds import ReplicaRules
from bench.sim_plain import asked_counts, plain_schedule

from llmroute.core.hpa import Policy, Rules
from llmroute.sim.capacity import CapacityModel

MODEL = CapacityModel(capacity_rps=50.0, startup_seconds=60.0)
RULES = ReplicaRules(1, 100, Rules(0, "Max", (Policy("Percent", 100, 15), Policy("Pods", 4, 15))))


def test_a_steady_load_asks_for_what_it_needs_and_a_rising_one_for_its_growth() -> None:
    steady = np.full(30, 475.0)  # 9.5 replicas' worth
    assert set(asked_counts(steady, MODEL, RULES, 0.9, 120).tolist()) == {10}
    rising = 100.0 * 1.1 ** np.arange(30, dtype=np.float64)  # x1.21 every two minutes
    asked = asked_counts(rising, MODEL, RULES, 0.9, 120)
    t = 20
    assert asked[t] == int(np.ceil(rising[t - 1] * 1.1**2 / 50.0 - 1e-9))


def test_the_decision_at_a_minute_sees_only_the_minutes_before_it() -> None:
    rng = np.random.default_rng(7)
    demand = rng.gamma(4.0, 100.0, 300)
    whole = asked_counts(demand, MODEL, RULES, 0.95, 120)
    cut = asked_counts(demand[:200], MODEL, RULES, 0.95, 120)
    assert np.array_equal(whole[:200], cut)
    changed = demand.copy()
    changed[150:] *= 3.0
    assert np.array_equal(asked_counts(changed, MODEL, RULES, 0.95, 120)[:151], whole[:151])


def test_hysteresis_holds_a_scale_down_for_the_hold_and_the_band_skips_small_ones() -> None:
    asked = np.array([10] * 5 + [6] * 20 + [9] * 10, dtype=np.int64)
    held = plain_schedule(asked, RULES, hold=5, band=0.0)
    assert held[5:9].tolist() == [10] * 4 and held[9] == 6  # the largest of the last five minutes
    assert held[25:].tolist() == [9] * 10
    banded = plain_schedule(np.array([10] * 5 + [9] * 10, dtype=np.int64), RULES, hold=1, band=0.2)
    assert banded.tolist() == [10] * 15  # 9 is within 20 % of 10: hold


def test_missing_minutes_ask_nothing_new_and_a_scale_up_obeys_the_step_policies() -> None:
    demand = np.array([np.nan, np.nan, 500.0, *([np.nan] * 5), 500.0])
    asked = asked_counts(demand, MODEL, RULES, 0.9, 120)
    assert asked[:3].tolist() == [0, 0, 0]  # no known minute before minute 3
    assert set(asked[3:].tolist()) == {10}  # a gap keeps the last known minute
    slow = ReplicaRules(1, 100, Rules(0, "Max", (Policy("Pods", 1, 60),)))
    up = plain_schedule(np.array([1, 5, 5, 5], dtype=np.int64), slow, hold=1, band=0.0)
    assert up.tolist() == [1, 2, 3, 4]
