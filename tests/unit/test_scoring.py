"""The ResourceAware score (table-driven), the power-of-two-choices pick, the balancer on its signals."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from multidict import CIMultiDict

from llmroute.proxy.balancer import Balancer
from llmroute.proxy.engines import EngineLoad
from llmroute.proxy.scoring import Candidate, choose, score, scores
from llmroute.spec.proxyconfig import PassiveHealthConfig, ProxyConfig

C = Candidate

# (case, candidates, expected order by score: best first)
ORDER_CASES: list[tuple[str, list[Candidate], list[str]]] = [
    (
        "without signals it is least connections",
        [C("a", inflight=3), C("b", inflight=1), C("c", inflight=2)],
        ["b", "c", "a"],
    ),
    (
        "an engine's own queue counts, not only this proxy's connections",
        [C("a", inflight=0, load=12, capacity=8), C("b", inflight=4, load=4, capacity=8)],
        ["b", "a"],
    ),
    (
        "equal load: the larger engine is less loaded",
        [C("small", load=8, capacity=8), C("large", load=8, capacity=32)],
        ["large", "small"],
    ),
    (
        "utilisation decides between unequal engines",
        [C("small", load=2, capacity=8), C("large", load=20, capacity=32)],
        ["small", "large"],
    ),
    (
        "an engine whose capacity is unknown is taken at the others' median",
        [C("new", load=6), C("a", load=6, capacity=8), C("b", load=6, capacity=16)],
        ["b", "new", "a"],
    ),
    (
        "a stale engine falls back to this proxy's in-flight count over its learned capacity",
        [C("stale", inflight=2, capacity=16), C("fresh", inflight=0, load=10, capacity=16)],
        ["stale", "fresh"],
    ),
    (
        "less quota left makes an upstream worse at equal load",
        [C("a", inflight=2, headroom=0.2), C("b", inflight=2, headroom=0.9)],
        ["b", "a"],
    ),
    (
        "quota headroom outweighs a few connections",
        [C("low", inflight=1, headroom=0.1), C("high", inflight=5, headroom=0.8)],
        ["high", "low"],
    ),
    (
        "an upstream that never reported quota counts as full",
        [C("unknown", inflight=2), C("half", inflight=2, headroom=0.5)],
        ["unknown", "half"],
    ),
    (
        "a slower upstream is worse at equal load",
        [C("slow", inflight=2, latency=2.0), C("fast", inflight=2, latency=0.5)],
        ["fast", "slow"],
    ),
    (
        "latency is clamped: a lagging average cannot outweigh a queue",
        [C("slow", load=1, capacity=8, latency=10.0), C("queued", load=30, capacity=8, latency=0.1)],
        ["slow", "queued"],
    ),
    (
        "failures in a row count against an upstream",
        [C("flaky", inflight=1, failures=2), C("ok", inflight=3)],
        ["ok", "flaky"],
    ),
    (
        "an upstream cooling down after a 429 goes last but before an ejected one",
        [C("cooling", cooling=True), C("ejected", ejected=True), C("busy", load=64, capacity=8)],
        ["busy", "cooling", "ejected"],
    ),
]


@pytest.mark.parametrize(("case", "candidates", "expected"), ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_order_by_score(case: str, candidates: list[Candidate], expected: list[str]) -> None:
    by_name = scores(candidates)
    assert sorted(by_name, key=by_name.__getitem__) == expected


# (candidate, default capacity, mean latency, score)
VALUE_CASES: list[tuple[Candidate, float, float, float]] = [
    (C("a"), 1.0, 0.0, 1.0),
    (C("a", inflight=3), 1.0, 0.0, 4.0),
    (C("a", inflight=3, load=7, capacity=16), 1.0, 0.0, 0.5),
    (C("a", load=7), 16.0, 0.0, 0.5),
    (C("a", load=7, capacity=16, headroom=0.5), 1.0, 0.0, 1.0),
    (C("a", inflight=1, headroom=0.0), 1.0, 0.0, 200.0),  # headroom floored at 1 %
    (C("a", inflight=1, latency=3.0), 1.0, 1.0, 4.0),  # ratio 3 clamped to 2
    (C("a", inflight=1, latency=0.1), 1.0, 1.0, 1.0),  # ratio 0.1 clamped to 0.5
    (C("a", inflight=1, failures=1), 1.0, 0.0, 4.0),
    (C("a", cooling=True), 1.0, 0.0, 1001.0),
    (C("a", ejected=True), 1.0, 0.0, 1_000_001.0),
]


@pytest.mark.parametrize(("candidate", "capacity", "latency", "expected"), VALUE_CASES)
def test_score_values(candidate: Candidate, capacity: float, latency: float, expected: float) -> None:
    assert score(candidate, capacity, latency) == pytest.approx(expected)


def test_two_candidates_are_both_compared() -> None:
    rng = random.Random(1)
    pair = [C("a", inflight=5), C("b", inflight=1)]
    assert {choose(pair, rng)[0] for _ in range(50)} == {"b"}


def test_power_of_two_choices_spreads_picks_but_never_picks_the_worst() -> None:
    rng = random.Random(7)
    pool = [C("best", load=1, capacity=8), C("mid", load=4, capacity=8), C("worst", load=7, capacity=8)]
    first = Counter(choose(pool, rng)[0] for _ in range(3000))
    assert first["worst"] == 0  # it loses every pair it is drawn in
    # the best wins the two pairs it is in (2/3), the middle one the pair without the best (1/3)
    assert first["best"] == pytest.approx(2000, rel=0.08)
    assert first["mid"] == pytest.approx(1000, rel=0.15)


def test_the_rest_follow_by_score_for_retries() -> None:
    rng = random.Random(3)
    pool = [C(n, inflight=i) for i, n in enumerate("abcde")]
    for _ in range(100):
        order = choose(pool, rng)
        assert sorted(order) == list("abcde")
        rest = order[1:]
        assert rest == sorted(rest)  # inflight grows with the letter


def test_ties_are_broken_at_random() -> None:
    rng = random.Random(5)
    pool = [C(n) for n in "abc"]
    assert {choose(pool, rng)[0] for _ in range(200)} == {"a", "b", "c"}


def test_the_balancer_scores_what_its_signals_say() -> None:
    config = ProxyConfig.model_validate(
        {
            "route": {"namespace": "ns", "name": "r"},
            "loadBalancing": "ResourceAware",
            "upstreams": [{"name": n, "url": f"http://{n}:8000/v1", "model": "m"} for n in ("a", "b")],
        }
    )
    balancer = Balancer(lambda name, healthy: None, random.Random(1))
    balancer.sync(config)
    balancer.signals.reading("a", EngineLoad("vLLM", waiting=6, running=8, kv_cache_usage=1.0), 10.0, 0)
    assert [u.name for u in balancer.plan(config, config.upstreams, 10.5)] == ["b", "a"]
    assert balancer.candidate("a", 10.5).load == 14.0 and balancer.candidate("a", 10.5).capacity == 8.0
    # the engine's reading goes stale (three scrape intervals of 1 s): a is judged by connections again
    assert balancer.candidate("a", 13.5).load is None
    balancer.answered("b", 429, CIMultiDict({"Retry-After": "30"}), 13.5)
    assert [u.name for u in balancer.plan(config, config.upstreams, 14.0)] == ["a", "b"]
    assert balancer.candidate("b", 44.0).cooling is False


def test_an_upstream_ejected_a_thousand_times_is_ejected_for_the_maximum() -> None:
    """An upstream that stays down is ejected again after every ejection: past 1,024 ejections
    2^(n-1) x ejectSeconds was too large for a float, and the failure raised OverflowError in the request
    path instead of ejecting it."""
    policy = PassiveHealthConfig(consecutive_failures=1, eject_seconds=30.0, max_eject_seconds=900.0)
    balancer = Balancer(lambda name, healthy: None, random.Random(1))
    balancer.state("a").ejections = 1100
    balancer.failure("a", 100.0, policy)
    assert balancer.state("a").ejections == 1101
    assert balancer.state("a").ejected_until == 100.0 + 900.0
