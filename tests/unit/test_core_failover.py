"""evaluate(): per-upstream health, hysteresis, backoff, dwell and fail-open."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from llmroute.core.failover import FailoverState, UpstreamObservation, evaluate
from llmroute.spec.route import LLMRouteSpec
from tests.unit.core_helpers import T0, spec

OK = UpstreamObservation(error_rate=0.01, latency_p95_seconds=2.0, requests=500)
BAD = UpstreamObservation(error_rate=0.5, latency_p95_seconds=2.0, requests=500)
SLOW = UpstreamObservation(error_rate=0.0, latency_p95_seconds=45.0, requests=500)
MEH = UpstreamObservation(error_rate=0.2, latency_p95_seconds=2.0, requests=500)  # below 0.25, above 0.125
FEW = UpstreamObservation(error_rate=1.0, latency_p95_seconds=2.0, requests=3)


def route(**failover: Any) -> LLMRouteSpec:
    return spec(
        upstreams=[
            {"name": "a", "url": "http://a.invalid/v1", "model": "m", "group": 0},
            {"name": "b", "url": "http://b.invalid/v1", "model": "m", "group": 1},
        ],
        failover=failover,
    )


def run(
    r: LLMRouteSpec, script: Sequence[Mapping[str, UpstreamObservation | None]], step: int = 60
) -> list[Any]:
    state = FailoverState()
    results = []
    for i, obs in enumerate(script):
        result = evaluate(r, now=T0 + timedelta(seconds=step * i), observations=obs, state=state)
        state = FailoverState.from_dict(result.state.to_dict())
        results.append(result)
    return results


def states(result: Any) -> tuple[str, str]:
    by = {u.name: u.state for u in result.upstreams}
    return by["a"], by["b"]


@pytest.mark.parametrize(
    ("obs", "expected"),
    [
        (OK, "Healthy"),
        (BAD, "Unhealthy"),
        (SLOW, "Unhealthy"),
        (FEW, "Unknown"),  # fewer than minRequests: not judged
        (None, "Unknown"),  # no data: not judged
        (UpstreamObservation(), "Unknown"),
    ],
)
def test_first_judgement(obs: UpstreamObservation | None, expected: str) -> None:
    result = run(route(), [{"a": obs, "b": OK}])[0]
    assert states(result)[0] == expected


def test_missing_data_never_flips_state() -> None:
    results = run(route(), [{"a": OK, "b": OK}, {"a": None, "b": OK}, {"b": OK}, {"a": FEW, "b": OK}])
    assert [states(r)[0] for r in results] == ["Healthy"] * 4
    results = run(route(), [{"a": BAD, "b": OK}] + [{"a": None, "b": OK}] * 10)
    assert all(states(r)[0] == "Unhealthy" for r in results)
    assert all(r.active_group == 1 for r in results)


def test_failover_recovery_hysteresis_and_failback() -> None:
    r = route(cooldownSeconds=60, failbackAfterSeconds=300, minDwellSeconds=120, windowSeconds=30)
    script: list[dict[str, UpstreamObservation | None]] = [{"a": OK, "b": OK}, {"a": BAD, "b": OK}]
    script += [{"a": OK, "b": OK}] * 3  # the 60 s cooldown ends at t=120: recovering
    script += [{"a": MEH, "b": OK}]  # not bad, but above threshold x recoveryFactor: the clock restarts
    script += [{"a": OK, "b": OK}] * 7
    results = run(r, script)
    assert [r.active_group for r in results[:2]] == [0, 1]
    assert any("failing over from group 0 to group 1" in e.message for e in results[1].events)
    trail = [states(x)[0] for x in results]
    assert trail[:5] == ["Healthy", "Unhealthy", "Recovering", "Recovering", "Recovering"]
    assert trail[5] == "Recovering"  # MEH keeps it recovering but resets the sustained-health clock
    healthy_at = trail.index("Healthy", 2)
    assert healthy_at == 11  # 300 s of sustained health counted from minute 6
    assert results[healthy_at].active_group == 0
    assert any("failing back from group 1 to group 0" in e.message for e in results[healthy_at].events)


def test_relapse_doubles_the_cooldown_up_to_the_maximum() -> None:
    r = route(cooldownSeconds=60, maxCooldownSeconds=150, failbackAfterSeconds=0)
    seq: list[dict[str, UpstreamObservation | None]] = [
        {"a": BAD, "b": OK},
        {"a": OK, "b": OK},
        {"a": OK, "b": OK},  # out 60 s, then recovering and healthy
        {"a": BAD, "b": OK},
        {"a": OK, "b": OK},
        {"a": OK, "b": OK},
        {"a": OK, "b": OK},  # second failure: 120 s
        {"a": BAD, "b": OK},  # third: 240 s capped at 150
    ]
    results = run(r, seq)
    cooldowns = [e.message for x in results for e in x.events if "cooldown" in e.message]
    assert [c.split("cooldown ")[1] for c in cooldowns] == ["60s", "120s", "150s"]
    assert [states(x)[0] for x in results[3:7]] == ["Unhealthy", "Unhealthy", "Recovering", "Healthy"]


def test_the_failure_that_marked_an_upstream_never_decides_its_recovery() -> None:
    # window 30 s, cooldown 10 s, a decision every 5 s: a is marked unhealthy at t=5 on a window that
    # held its first errors. Until t=35 its window still holds them: diluted by the traffic before the
    # failure (t=20: 1 % errors) it would look recovered; with that traffic gone and only the errors left
    # (t=30: 50 %) it would look failing again - a second failure, a doubled cooldown - though the
    # upstream was mended at t=10 and has served without error since.
    r = route(cooldownSeconds=10, windowSeconds=30, failbackAfterSeconds=10, minDwellSeconds=0)
    diluted = UpstreamObservation(error_rate=0.012, latency_p95_seconds=0.1, requests=400)
    stale = UpstreamObservation(error_rate=0.5, latency_p95_seconds=0.1, requests=12)
    clean = UpstreamObservation(error_rate=0.0, latency_p95_seconds=0.1, requests=30)
    script: list[dict[str, UpstreamObservation | None]] = [{"a": OK, "b": OK}, {"a": BAD, "b": OK}]
    later: list[dict[str, UpstreamObservation | None]] = [{"a": diluted, "b": OK}] * 3
    script += later + [{"a": stale, "b": OK}] * 2 + [{"a": clean, "b": OK}] * 6
    results = run(r, script, step=5)
    trail = [states(x)[0] for x in results]
    assert trail[:7] == ["Healthy"] + ["Unhealthy"] * 6, trail  # t=5..30: its window overlaps t=5
    assert trail[7] == "Recovering"  # t=35: the first window wholly after the mark, and it is clean
    assert trail.index("Healthy", 1) == 9  # t=45: failbackAfterSeconds of clean figures
    assert results[9].active_group == 0
    events = [e.message for x in results for e in x.events if x is not results[1]]
    assert not any("unhealthy again" in m for m in events), events  # one failure, counted once
    assert results[-1].state.upstreams["a"].failures == 1


def test_min_dwell_delays_failback() -> None:
    r = route(cooldownSeconds=0, failbackAfterSeconds=0, minDwellSeconds=600, windowSeconds=30)
    script: Sequence[Mapping[str, UpstreamObservation | None]] = [{"a": BAD, "b": OK}] + [
        {"a": OK, "b": OK}
    ] * 12
    results = run(r, script)
    groups = [x.active_group for x in results]
    assert groups[0] == 1
    assert states(results[2])[0] == "Healthy"
    assert groups.index(0) == 10  # 600 s after the switch at t=0


def test_fail_open_to_the_least_bad_group() -> None:
    r = route()
    worse = UpstreamObservation(error_rate=0.9, latency_p95_seconds=2.0, requests=500)
    results = run(r, [{"a": worse, "b": BAD}, {"a": worse, "b": BAD}])
    first = results[0]
    assert first.fail_open and first.active_group == 1  # b fails less
    assert any("every upstream is unhealthy: failing open to group 1" in e.message for e in first.events)
    assert results[1].events == []  # said once
    state = results[1].state
    later = []
    for minute in range(30, 37):  # recovering is not yet usable: fail-open lasts until failback (300 s)
        later.append(
            evaluate(r, now=T0 + timedelta(minutes=minute), observations={"a": OK, "b": OK}, state=state)
        )
        state = later[-1].state
    assert later[0].fail_open and later[0].active_group == 0  # a recovering member makes group 0 least bad
    assert [x.fail_open for x in later] == [True] * 5 + [False] * 2
    assert any("usable again" in e.message for e in later[5].events)


def test_group_with_a_healthy_member_stays_active() -> None:
    r = spec(
        upstreams=[
            {"name": "a1", "url": "http://a1.invalid/v1", "model": "m", "group": 0},
            {"name": "a2", "url": "http://a2.invalid/v1", "model": "m", "group": 0},
            {"name": "b", "url": "http://b.invalid/v1", "model": "m", "group": 1},
        ]
    )
    result = evaluate(r, now=T0, observations={"a1": BAD, "a2": OK, "b": OK}, state=FailoverState())
    assert result.active_group == 0 and not result.fail_open
    assert [u.state for u in result.upstreams] == ["Unhealthy", "Healthy", "Healthy"]


def test_state_round_trip() -> None:
    results = run(route(), [{"a": BAD, "b": OK}])
    state = results[0].state
    assert FailoverState.from_dict(state.to_dict()) == state
    assert FailoverState.from_dict({"up": {"a": {"s": "Bogus"}}}).upstreams["a"].state == "Unknown"


def test_an_upstream_that_flapped_a_thousand_times_gets_the_maximum_cooldown() -> None:
    """The failure count behind the backoff keeps growing while an upstream flaps (it resets only after
    maxCooldownSeconds of health): however large it gets, the cooldown is maxCooldownSeconds, computed
    without a number of 2^(n-1) (the exponent stops at core.backoff.MAX_DOUBLINGS, so it never meets a
    float's range)."""
    r = route(cooldownSeconds=60, maxCooldownSeconds=150)
    flapped = {
        "up": {
            "a": {"s": "Recovering", "since": T0.timestamp() - 30, "n": 1100, "good": T0.timestamp() - 30},
            "b": {"s": "Healthy", "since": T0.timestamp() - 3600, "n": 0},
        },
        "group": 1,
        "switched": T0.timestamp() - 3600,
        "open": False,
    }
    state = FailoverState.from_dict(flapped)
    assert state.upstreams["a"].failures == 1100
    result = evaluate(r, now=T0, observations={"a": BAD, "b": OK}, state=state)
    assert [e.message.split("cooldown ")[1] for e in result.events if "cooldown" in e.message] == ["150s"]
    assert result.state.upstreams["a"].cooldown_until == T0.timestamp() + 150


@pytest.mark.parametrize(("cooldown", "recovering_at"), [(30, 1), (600, 10)])
def test_a_changed_cooldown_applies_to_an_upstream_already_out(cooldown: int, recovering_at: int) -> None:
    """Marked unhealthy with a 300 s cooldown at minute 0, then ``cooldownSeconds`` is edited: it may
    recover once the new cooldown (and the 60 s window) has passed since it was marked, not the old one.
    Before, the cooldown stamped at the failure held (recovering at minute 5 either way)."""
    before = route(cooldownSeconds=300, windowSeconds=60, failbackAfterSeconds=0, minDwellSeconds=0)
    after = route(cooldownSeconds=cooldown, windowSeconds=60, failbackAfterSeconds=0, minDwellSeconds=0)
    first = evaluate(before, now=T0, observations={"a": BAD, "b": OK}, state=FailoverState())
    assert states(first) == ("Unhealthy", "Healthy")
    state = FailoverState.from_dict(first.state.to_dict())
    seen = None
    for minute in range(1, 12):
        result = evaluate(
            after, now=T0 + timedelta(minutes=minute), observations={"a": OK, "b": OK}, state=state
        )
        state = FailoverState.from_dict(result.state.to_dict())
        if states(result)[0] != "Unhealthy":
            seen = minute
            break
    assert seen == recovering_at
