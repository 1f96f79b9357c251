"""Decisions after a long time, or with stored times from the future: state never poisons later cycles.

The operator persists its decision state (scaler memory, forecast accuracy, failover health) in the route's
status. A status restored from a backup, a clock that went back, or a new leader whose clock is behind its
predecessor's gives times later than ``now``; such a time must not hold a decision until the clock reaches
it (a day, a year)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from llmroute.core.failover import FailoverState, Health, UpstreamObservation, evaluate
from llmroute.core.hpa import Memory
from llmroute.core.predictive import Accuracy
from llmroute.core.ratelimit import ShedState, plan
from llmroute.core.scaling import ScalerState, recommend
from llmroute.spec.route import LLMRouteSpec
from tests.unit.core_helpers import T0, minutes, scaling_spec, series, spec

DAY = 86400.0


def test_a_recommendation_stamped_a_day_ahead_does_not_hold_the_count_for_a_day() -> None:
    """Memory from a clock a day ahead: 20 replicas recommended and added "tomorrow". The scale-down
    window (300 s) must count from now, not from tomorrow: the count comes down within minutes."""
    route = scaling_spec()
    start = T0 + minutes(60)
    ahead = start.timestamp() + DAY
    state = ScalerState(memory=Memory(((ahead, 20),), ((ahead, 18),), ahead))
    load = [200.0] * 90  # 5 replicas at 40 each
    current, finals = 20, []
    for m in range(0, 20):
        now = start + minutes(m)
        result = recommend(
            route, now=now, current_replicas=current, history=series(load[: 60 + m]), state=state
        )
        state, current = result.state, result.recommendation.final
        finals.append(current)
        times = [t for t, _ in (*state.memory.recommendations, *state.memory.events)]
        assert max(times) <= now.timestamp()
    assert finals[0] == 20  # what was recommended "tomorrow" counts as recommended now ...
    assert finals[-1] < 10  # ... and ages out of the 300 s window like any other


def test_a_scale_event_stamped_ahead_does_not_block_scale_ups() -> None:
    """A scale-up of 8 stamped a day ahead counts as added within every policy period; it must age out of
    the 15 s periods like one made now instead of holding the scale-up limit down for a day."""
    route = scaling_spec()
    now = T0 + minutes(60)
    ahead = now.timestamp() + DAY
    state = ScalerState(memory=Memory((), ((ahead, 8),), ahead))
    first = recommend(route, now=now, current_replicas=10, history=series([2000.0] * 60), state=state)
    # 8 of the 10 count as just added: the policies allow x2 (or +4) from the 2 there were before
    assert first.recommendation.final == 10
    second = recommend(
        route, now=now + minutes(1), current_replicas=10, history=series([2000.0] * 61), state=first.state
    )
    # a minute later the event is out of every 15 s period: the policies allow x16 over the four periods,
    # and the load is met (2000 at 40 per replica within 10 %: 46, 48 with the scale-up margin)
    assert second.recommendation.final == 48


def test_a_forecast_stamped_ahead_does_not_stop_forecasting() -> None:
    """A pending forecast from a day ahead can never be scored, and while it was the newest one no other
    forecast was recorded: the accuracy froze (and a stepped-back prediction stayed back) for a day."""
    route = scaling_spec(predictive={"enabled": True, "minHistoryHours": 1})
    now = T0 + minutes(3 * 1440)
    ahead = now.timestamp() + DAY
    acc = Accuracy(50.0, 100.0, updated=ahead, pending=((ahead, 1.0),), stepped_back=True)
    values = 200.0 + 100.0 * np.sin(np.arange(3 * 1440) * 2 * np.pi / 1440)
    result = recommend(
        route,
        now=now,
        current_replicas=5,
        history=series(values),
        state=ScalerState(accuracy=acc),
    )
    pending = result.state.accuracy.pending
    assert pending and all(t <= now.timestamp() for t, _ in pending)
    assert pending[-1][0] == now.timestamp()  # this decision's forecast is remembered to be scored
    updated = result.state.accuracy.updated
    assert updated is None or updated <= now.timestamp()


def _failover_spec() -> LLMRouteSpec:
    return spec(
        upstreams=[
            {"name": "a", "url": "http://a.invalid/v1", "model": "m", "group": 0},
            {"name": "b", "url": "http://b.invalid/v1", "model": "m", "group": 1},
        ]
    )


GOOD = UpstreamObservation(error_rate=0.0, latency_p95_seconds=0.1, requests=1000)


def test_a_switch_stamped_ahead_does_not_keep_failback_waiting() -> None:
    """The last group switch stamped a day ahead: failing back to the better group waits
    ``minDwellSeconds`` from the first decision that sees it, not a day."""
    route = _failover_spec()
    now = T0 + minutes(60)
    ahead = now.timestamp() + DAY
    state = FailoverState({"a": Health("Healthy", now.timestamp() - 3600)}, 1, ahead, False)
    seen = {"a": GOOD, "b": GOOD}
    first = evaluate(route, now=now, observations=seen, state=state)
    assert first.active_group == 1  # the switch counts as made now: dwell first
    assert first.state.switched_at == now.timestamp()
    later = now + minutes(60)  # far beyond minDwellSeconds
    result = evaluate(route, now=later, observations=seen, state=first.state)
    assert result.active_group == 0


def test_a_cooldown_stamped_ahead_is_at_most_the_longest_cooldown() -> None:
    """An upstream marked unhealthy "tomorrow" with its cooldown running from then: it is judged again
    after at most ``maxCooldownSeconds`` (and one window) from now, not after a day."""
    route = _failover_spec()
    cfg = route.failover
    now = T0 + minutes(60)
    ahead = now.timestamp() + DAY
    sick = Health("Unhealthy", ahead, 1, ahead + cfg.cooldown_seconds)
    state = FailoverState({"a": sick, "b": Health("Healthy", now.timestamp())}, 1, now.timestamp(), False)
    seen = {"a": GOOD, "b": GOOD}
    first = evaluate(route, now=now, observations=seen, state=state)
    health = first.state.upstreams["a"]
    assert health.state == "Unhealthy"
    assert health.since == now.timestamp()
    # its one failure's cooldown, counted from now (where its marking now reads)
    assert health.cooldown_until == now.timestamp() + cfg.cooldown_seconds
    assert cfg.cooldown_seconds <= cfg.max_cooldown_seconds
    later = now + timedelta(seconds=cfg.max_cooldown_seconds + cfg.window_seconds)
    result = evaluate(route, now=later, observations=seen, state=first.state)
    assert result.state.upstreams["a"].state == "Recovering"


def test_shedding_stamped_ahead_restores_after_the_calm_period_from_now() -> None:
    """A tier shed with its last step and calm clock stamped a day ahead: it is restored after
    ``restoreAfterSeconds`` of calm from now, not a day later."""
    route = spec(
        rateLimits={
            "tiers": [
                {"name": "gold", "priority": 100, "requestsPerMinute": 6000},
                {"name": "free", "priority": 0, "requestsPerMinute": 1200},
            ],
            "adaptiveShedding": {"restoreAfterSeconds": 180},
        }
    )
    now = T0 + minutes(60)
    ahead = now.timestamp() + DAY
    state = ShedState({"free": 1}, calm_since=ahead, last_step=ahead)
    factors = []
    for m in range(6):
        result = plan(
            route,
            now=now + minutes(m),
            current_replicas=4,
            desired_replicas=4,
            utilisation=0.2,
            at_max=True,
            state=state,
        )
        state = result.state
        factors.append({lim.tier: lim.shed_factor for lim in result.limits}["free"])
    assert factors[0] < 1.0  # still shed: the calm counts from now
    assert factors[-1] == 1.0  # restored three minutes of calm later
