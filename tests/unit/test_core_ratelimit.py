"""plan(): time-of-day multipliers, replica-aware division, adaptive shedding and restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmroute.core.ratelimit import ShedState, plan, shed_factor
from llmroute.spec.route import LLMRouteSpec
from tests.unit.core_helpers import T0, spec

TIERS = [
    {"name": "gold", "priority": 100, "requestsPerMinute": 6000, "tokensPerMinute": 1_000_000},
    {"name": "silver", "priority": 50, "requestsPerMinute": 3000},
    {"name": "free", "priority": 0, "requestsPerMinute": 1200, "tokensPerMinute": 200_000},
    {"name": "internal", "priority": 10, "requestsPerMinute": 900, "sheddable": False},
]


def route(**rate_limits: Any) -> LLMRouteSpec:
    rate_limits.setdefault("tiers", TIERS)
    return spec(rateLimits=rate_limits)


def limits(result: Any) -> dict[str, Any]:
    return {lim.tier: lim for lim in result.limits}


@pytest.mark.parametrize(
    ("current", "desired", "divisor", "free_share"),
    [
        (4, 4, 4, 300),
        (4, 8, 8, 150),  # scaling up: the new, smaller share applies at once
        (8, 4, 8, 150),  # scaling down: the leaving replicas still count
        (0, 0, 1, 1200),
        (7, 7, 7, 171),  # floor: 7 x 171 = 1197 <= 1200
    ],
)
def test_division_never_exceeds_the_global_limit(
    current: int, desired: int, divisor: int, free_share: int
) -> None:
    result = plan(
        route(),
        now=T0,
        current_replicas=current,
        desired_replicas=desired,
        utilisation=0.5,
        at_max=False,
        state=ShedState(),
    )
    assert result.divisor == divisor
    free = limits(result)["free"]
    assert (free.requests_per_minute, free.per_replica_requests_per_minute) == (1200, free_share)
    for lim in result.limits:
        if lim.requests_per_minute is not None and lim.per_replica_requests_per_minute is not None:
            assert lim.per_replica_requests_per_minute * max(current, desired, 1) <= lim.requests_per_minute


SCHEDULES = [
    {"name": "peak", "start": "18:00", "end": "23:00", "multiplier": 0.5},
    {"name": "free-peak", "start": "19:00", "end": "21:00", "multiplier": 0.25, "tiers": ["free"]},
    {"name": "night", "start": "23:00", "end": "07:00", "multiplier": 2.0, "timezone": "Europe/Berlin"},
    {"name": "peak-again", "start": "18:00", "end": "23:00", "multiplier": 0.1},
]


@pytest.mark.parametrize(
    ("when", "gold", "free"),
    [
        (datetime(2025, 3, 3, 12, 0, tzinfo=UTC), 1.0, 1.0),
        (datetime(2025, 3, 3, 18, 30, tzinfo=UTC), 0.5, 0.5),  # the first listed of two general windows
        (datetime(2025, 3, 3, 19, 30, tzinfo=UTC), 0.5, 0.25),  # a window naming the tier beats the general
        (datetime(2025, 3, 3, 23, 30, tzinfo=UTC), 2.0, 2.0),  # 00:30 in Berlin, window since 23:00 Berlin
        (datetime(2025, 3, 3, 22, 30, tzinfo=UTC), 0.5, 0.5),  # 23:30 Berlin, but "peak" is listed first
    ],
)
def test_schedule_multipliers(when: datetime, gold: float, free: float) -> None:
    result = plan(
        route(schedules=SCHEDULES),
        now=when,
        current_replicas=2,
        desired_replicas=2,
        utilisation=0.5,
        at_max=False,
        state=ShedState(),
    )
    got = limits(result)
    assert (got["gold"].multiplier, got["free"].multiplier) == (gold, free)
    assert got["free"].requests_per_minute == int(1200 * free)


def test_multiplier_changes_are_reported_once() -> None:
    r = route(schedules=SCHEDULES[:1])
    before = datetime(2025, 3, 3, 17, 59, tzinfo=UTC)
    first = plan(
        r,
        now=before,
        current_replicas=2,
        desired_replicas=2,
        utilisation=0.5,
        at_max=False,
        state=ShedState(),
    )
    assert first.events == []
    during = plan(
        r,
        now=before + timedelta(minutes=2),
        current_replicas=2,
        desired_replicas=2,
        utilisation=0.5,
        at_max=False,
        state=first.state,
    )
    assert any("tier free limits x0.5 (was x1): window peak" in e for e in during.events)
    again = plan(
        r,
        now=before + timedelta(minutes=3),
        current_replicas=2,
        desired_replicas=2,
        utilisation=0.5,
        at_max=False,
        state=during.state,
    )
    assert again.events == []


def _run(
    r: LLMRouteSpec, steps: list[tuple[float | None, bool]], start: datetime = T0
) -> list[dict[str, float]]:
    state = ShedState()
    out = []
    for i, (util, at_max) in enumerate(steps):
        result = plan(
            r,
            now=start + timedelta(minutes=i),
            current_replicas=10,
            desired_replicas=10,
            utilisation=util,
            at_max=at_max,
            state=state,
        )
        state = ShedState.from_dict(result.state.to_dict())  # persisted between reconciles
        out.append({lim.tier: lim.shed_factor for lim in result.limits})
    return out


def test_shedding_order_lowest_priority_first_and_never_the_top_or_unsheddable() -> None:
    factors = _run(route(), [(0.95, True)] * 12)
    assert [f["free"] for f in factors[:5]] == [0.5, 0.25, 0.125, 0.0625, 0.0]
    assert [f["silver"] for f in factors[4:8]] == [1.0, 0.5, 0.25, 0.125]
    assert all(f["gold"] == 1.0 and f["internal"] == 1.0 for f in factors)


@pytest.mark.parametrize(
    ("util", "at_max"),
    [(0.95, False), (0.85, True), (None, True)],  # not at max / below threshold / no data: nothing happens
)
def test_no_shedding_unless_saturated_at_max(util: float | None, at_max: bool) -> None:
    factors = _run(route(), [(util, at_max)] * 5)
    assert all(v == 1.0 for f in factors for v in f.values())


def test_restore_in_reverse_order_after_sustained_calm() -> None:
    r = route(adaptiveShedding={"restoreAfterSeconds": 180})
    steps: list[tuple[float | None, bool]] = [(0.95, True)] * 6  # free to 0, silver to 0.5
    steps += [(0.5, True)] * 2 + [(0.8, True)]  # calm, then between the thresholds: the calm clock resets
    steps += [(0.5, True)] * 12
    factors = _run(r, steps)
    assert (factors[5]["free"], factors[5]["silver"]) == (0.0, 0.5)
    assert factors[8] == factors[5]  # nothing restored yet
    restored = factors[9:]
    first_change = next(i for i, f in enumerate(restored) if f != factors[5])
    assert first_change == 3  # 180 s of calm after the reset
    assert restored[first_change]["silver"] == 1.0 and restored[first_change]["free"] == 0.0  # silver first
    assert restored[-1]["free"] > 0.0


def test_a_metrics_gap_does_not_count_as_calm() -> None:
    """Calm for 120 s, then 10 minutes without a reading, then calm again: restoreAfterSeconds 180 is
    counted from the first reading after the gap (before, the gap counted as calm and the tier was
    restored on the first reading after it)."""
    r = route(adaptiveShedding={"restoreAfterSeconds": 180})
    steps: list[tuple[float | None, bool]] = [(0.95, True)] * 6
    steps += [(0.5, True)] * 3
    steps += [(None, True)] * 10
    steps += [(0.5, True)] * 6
    factors = _run(r, steps)
    shed = factors[5]
    assert factors[18] == shed  # through the gap: held
    after = factors[19:]
    first_change = next(i for i, f in enumerate(after) if f != shed)
    assert first_change == 3, [f["silver"] for f in after]  # 180 s of observed calm after the gap


def test_min_factor_and_snapping() -> None:
    r = route(adaptiveShedding={"stepFactor": 0.5, "minFactor": 0.3})
    sh = r.rate_limits.adaptive_shedding
    assert [shed_factor(level, sh) for level in range(4)] == [1.0, 0.5, 0.3, 0.3]


def test_shed_events_name_tier_and_reason() -> None:
    result = plan(
        route(),
        now=T0,
        current_replicas=10,
        desired_replicas=10,
        utilisation=0.97,
        at_max=True,
        state=ShedState(),
    )
    assert result.events and "shedding tier free" in result.events[0] and "97%" in result.events[0]


def test_state_round_trip_and_garbage() -> None:
    state = ShedState({"free": 2}, 10.0, 20.0, {"free": 0.5})
    assert ShedState.from_dict(state.to_dict()) == state
    assert ShedState.from_dict({"levels": "x", "calm": "y"}) == ShedState()


@pytest.mark.parametrize("replicas", [1, 2, 19, 20, 21, 40, 1000])
def test_no_share_rounds_a_limit_to_zero(replicas: int) -> None:
    """20 requests/min over 21 replicas was 0 per replica: every request refused, forever."""
    small = [{"name": "tiny", "requestsPerMinute": 20, "tokensPerMinute": 7}]
    result = plan(
        route(tiers=small), now=T0, current_replicas=replicas, desired_replicas=replicas, utilisation=None,
        at_max=False, state=ShedState(),
    )  # fmt: skip
    tiny = limits(result)["tiny"]
    assert tiny.per_replica_requests_per_minute == max(1, 20 // replicas)
    assert tiny.per_replica_tokens_per_minute == max(1, 7 // replicas)
    # the floor is the only over-admission: the replicas together admit at most max(limit, replicas)
    assert tiny.per_replica_requests_per_minute * replicas <= max(20, replicas)


def test_a_tier_shed_entirely_stays_at_zero_but_a_small_factor_does_not_round_to_zero() -> None:
    from llmroute.core.ratelimit import scaled, share

    assert (scaled(10, 0.0), scaled(10, 0.05), scaled(10, 0.5)) == (0, 1, 5)
    assert (share(0, 4), share(1, 4), share(9, 4)) == (0, 1, 2)


def test_a_tier_shed_under_a_finer_step_restores_at_once_under_a_coarser_one() -> None:
    """``free`` was shed to the bottom under ``stepFactor: 0.9`` (29 steps), then the step was changed to
    0.5 (5 steps to the bottom): its first restore step after the calm period gives it 6.25 % again.
    Before, the 29 levels were walked back one a minute, 24 of them at the same 0 %."""
    r = route(adaptiveShedding={"stepFactor": 0.5, "restoreAfterSeconds": 60})
    state = ShedState({"free": 29}, None, None)
    factors = []
    for minute in range(8):
        result = plan(
            r,
            now=T0 + timedelta(minutes=minute),
            current_replicas=10,
            desired_replicas=10,
            utilisation=0.5,
            at_max=True,
            state=state,
        )
        state = ShedState.from_dict(result.state.to_dict())
        factors.append(limits(result)["free"].shed_factor)
    assert factors[0] == 0.0
    assert factors[1:6] == [0.0625, 0.125, 0.25, 0.5, 1.0]
