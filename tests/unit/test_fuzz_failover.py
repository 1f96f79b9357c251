"""Property tests of the failover decision over runs of generated observations: the active group is
always one of the route's groups and, unless failing open, holds a usable member; a move back to a better
group waits ``minDwellSeconds``; the status is finite JSON and the state survives its JSON form."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from llmroute.core.failover import USABLE, FailoverState, UpstreamObservation, evaluate
from llmroute.spec.route import LLMRouteSpec
from tests.unit.core_helpers import T0, spec

SETTINGS = settings(max_examples=150)  # the rest: the llmroute profile (tests/unit/conftest.py)
FIGURE = st.one_of(st.none(), st.sampled_from([0.0, 1.0, 1e15]), st.floats(0, 1e6))


@st.composite
def routes(draw: st.DrawFn) -> LLMRouteSpec:
    groups = draw(st.lists(st.integers(0, 3), min_size=1, max_size=5))
    upstreams = [
        {"name": f"u{i}", "url": "http://upstream.invalid/v1", "model": "m", "group": g}
        for i, g in enumerate([0, *groups[1:]])
    ]
    failover: dict[str, Any] = {
        "windowSeconds": draw(st.sampled_from([30, 120, 3600])),
        "minRequests": draw(st.sampled_from([1, 10, 1000000])),
        "cooldownSeconds": draw(st.sampled_from([0, 60])),
        "maxCooldownSeconds": draw(st.sampled_from([60, 86400])),
        "failbackAfterSeconds": draw(st.sampled_from([0, 300])),
        "minDwellSeconds": draw(st.sampled_from([0, 120, 86400])),
        "recoveryFactor": draw(st.sampled_from([1e-9, 0.5, 1.0])),
        "errorRateThreshold": draw(st.sampled_from([1e-9, 0.25, 1.0])),
    }
    return spec(upstreams=upstreams, failover=failover)


OBSERVATIONS = st.dictionaries(
    st.sampled_from(["u0", "u1", "u2", "u3", "u4", "gone"]),
    st.none() | st.builds(UpstreamObservation, FIGURE, FIGURE, FIGURE),
)


@SETTINGS
@given(routes(), st.lists(st.tuples(st.integers(1, 600), OBSERVATIONS), min_size=1, max_size=30))
def test_the_active_group_is_usable_and_moves_back_only_after_the_dwell(
    route: LLMRouteSpec, steps: list[tuple[int, dict[str, UpstreamObservation | None]]]
) -> None:
    group_of = {u.name: u.group for u in route.upstreams}
    state = FailoverState()
    now = T0
    for seconds, observations in steps:
        now += timedelta(seconds=seconds)
        before = state
        result = evaluate(route, now=now, observations=observations, state=state)
        usable = {group_of[s.name] for s in result.upstreams if s.state in USABLE}
        assert result.active_group in set(group_of.values())
        assert result.fail_open == (not usable)
        if not result.fail_open:
            assert result.active_group in usable
            prev = before.active_group
            if prev is not None and result.active_group < prev and prev in usable:
                # leaving a usable group for a better one waits the dwell
                assert before.switched_at is not None
                assert now.timestamp() - before.switched_at >= route.failover.min_dwell_seconds
            if result.active_group != min(usable):  # staying on a worse group: only within the dwell
                assert result.active_group == prev
        for status in result.upstreams:
            orjson.dumps(status.to_wire())  # what the status patch sends: finite JSON numbers
        state = FailoverState.from_dict(orjson.loads(orjson.dumps(result.state.to_dict())))
        assert state.active_group == result.state.active_group
        for name, health in result.state.upstreams.items():  # the figures are kept to 6 decimals
            again = state.upstreams[name]
            assert (again.state, again.since, again.failures, again.cooldown_until, again.good_since) == (
                health.state,
                health.since,
                health.failures,
                health.cooldown_until,
                health.good_since,
            )
