"""The feasibility bounds of the frontier benchmark are lower bounds: checked against every schedule of
small cases, under the simulator's own capacity model."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from bench.sim_bounds import (
    Feasibility,
    ReplicaRules,
    blind_minutes,
    ceilings,
    clairvoyant_under,
    dual,
    hold_schedule,
)

from llmroute.core.hpa import Policy, Rules
from llmroute.sim.capacity import CapacityModel, measure
from llmroute.sim.policies import run_oracle
from llmroute.sim.run import default_route

MODEL = CapacityModel(capacity_rps=50.0, startup_seconds=60.0)
UP = Rules(0, "Max", (Policy("Percent", 100, 15), Policy("Pods", 4, 15)))
SLOW_UP = Rules(0, "Max", (Policy("Pods", 1, 60),))  # one replica a minute: makes the limit bite


def brute_dual(need: list[int], lead: int, lo: int, hi: int, lam: float) -> float:
    n = len(need)
    best = math.inf
    for cover in itertools.product((0, 1), repeat=n):
        if any(x and need[i] > hi for i, x in enumerate(cover)):
            continue
        cost = 0.0
        for u in range(n):
            cost += max([lo] + [need[u + k] for k in range(lead + 1) if u + k < n and cover[u + k]])
        best = min(best, cost + lam * (n - sum(cover)))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_dual_is_the_exact_minimum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, lead = int(rng.integers(1, 7)), int(rng.integers(0, 3))
    need = rng.integers(0, 7, n).astype(np.int64)
    lo, hi, lam = int(rng.integers(0, 2)), int(rng.integers(2, 6)), float(rng.uniform(0.1, 8.0))
    assert dual(need, lead, lo, hi, lam) == pytest.approx(brute_dual(need.tolist(), lead, lo, hi, lam))


@pytest.mark.parametrize("seed", range(25))
def test_no_schedule_beats_the_clairvoyant_bound(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, lo, hi = int(rng.integers(2, 6)), 1, 4
    demand = rng.uniform(0.0, 4.5, n) * MODEL.capacity_rps
    found: dict[tuple[int, ...], tuple[float, int]] = {}
    for counts in itertools.product(range(lo, hi + 1), repeat=n):
        m, _ = measure(demand, np.array(counts, dtype=np.int64), MODEL)
        found[counts] = (m.replica_minutes, m.under_minutes)
    tight = 0
    for budget in range(n * lo, n * hi + 1):
        fewest = min(under for cost, under in found.values() if cost <= budget)
        bound = clairvoyant_under(demand, MODEL, lo, hi, float(budget))
        assert bound <= fewest
        tight += bound == fewest
    assert tight > 0


def test_clairvoyant_bound_is_zero_from_the_oracles_cost() -> None:
    demand = np.array([40.0, 45.0, 180.0, 190.0, 60.0, 55.0, 200.0, 30.0])
    spec = default_route(MODEL.capacity_rps, 4)
    oracle = run_oracle(spec, demand, MODEL).desired
    assert measure(demand, oracle, MODEL)[0].under_minutes == 0
    lo, hi = spec.proxy.min_replicas, spec.proxy.max_replicas
    assert clairvoyant_under(demand, MODEL, lo, hi, float(oracle.sum())) == 0
    assert clairvoyant_under(demand, MODEL, lo, hi, float(oracle.sum()) - 3.0) >= 1


def bounded_schedules(ceiling: np.ndarray, rules: ReplicaRules) -> list[np.ndarray]:
    """Every schedule at or below ``ceiling`` that rises no faster than the scale-up policies."""
    out: list[np.ndarray] = []
    for counts in itertools.product(*(range(rules.lo, int(c) + 1) for c in ceiling)):
        if all(counts[t] <= rules.step_up(counts[t - 1]) for t in range(1, len(counts))):
            out.append(np.array(counts, dtype=np.int64))
    return out


@pytest.mark.parametrize("up", [UP, SLOW_UP], ids=["default", "one-a-minute"])
@pytest.mark.parametrize("seed", range(15))
def test_every_bounded_schedule_misses_the_blind_minutes(seed: int, up: Rules) -> None:
    rng = np.random.default_rng(200 + seed)
    n, h, window = 6, float(rng.uniform(0.9, 1.6)), int(rng.integers(1, 4))
    demand = rng.choice([0.0, 20.0, 60.0, 110.0, 160.0, 240.0], n)
    rules = ReplicaRules(1, 6, up)
    ceiling = ceilings(demand, MODEL, rules, h, window)
    blind = blind_minutes(demand, MODEL, rules, h, window)
    schedules = bounded_schedules(ceiling, rules)
    assert schedules
    fewest = min(measure(demand, d, MODEL)[0].under_minutes for d in schedules)
    assert blind <= fewest


def test_a_jump_from_nothing_is_blind_for_two_minutes_and_the_scale_up_limit_for_a_third() -> None:
    demand = np.array([0.0] * 10 + [1500.0] * 6)  # 30 replicas' worth after ten idle minutes
    rules = ReplicaRules(1, 100, UP)
    assert rules.step_up(1) == 17
    assert blind_minutes(demand, MODEL, rules, 2.0, 60) == 3  # minutes 10, 11 unseen; 12 has at most 17


def test_the_hold_rule_rises_no_faster_than_the_scale_up_policies() -> None:
    demand = np.array([50.0, 50.0, 2000.0, 2000.0, 2000.0])
    rules = ReplicaRules(1, 100, UP)
    held = hold_schedule(demand, MODEL, rules, 1.0, 5)
    assert held.tolist() == [1, 1, 1, 17, 40]


@pytest.mark.parametrize(
    ("hpa_under", "jump", "constant", "verdict"),
    [
        (10.0, 9, {1: 12, 60: 12}, "infeasible by construction"),  # 9 > 0.8 x 10
        (10.0, 3, {1: 12, 60: 9}, "infeasible at constant headroom"),
        (10.0, 3, {1: 12, 60: 8}, "feasible, not reached"),  # 8 <= 8: not excluded
        (0.0, 0, {1: 0}, "feasible, not reached"),
        (0.0, 1, {1: 1}, "infeasible by construction"),
    ],
)
def test_verdict_names_the_bound_that_excludes_the_target(
    hpa_under: float, jump: int, constant: dict[int, int], verdict: str
) -> None:
    f = Feasibility(1300.0, 1000.0, hpa_under, 0, jump, constant, dict.fromkeys(constant, 1.2), None)
    assert f.verdict == verdict
    assert f.as_dict()["constant_headroom_bound"] == min(constant.values())
