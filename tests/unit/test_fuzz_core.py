"""Property tests of the decision core with extreme but schema-valid specs and ragged load histories:
``recommend`` stays within the replica bounds and never scales down without data, and the rate-limit plan
never hands out a negative or zero share of a non-zero limit, nor more than the global figure in total
(beyond the documented floor of 1 a minute per replica)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmroute.core.hpa import MAX_COUNT
from llmroute.core.ratelimit import ShedState, plan
from llmroute.core.scaling import ScalerState, recommend
from llmroute.core.schedule import bounds
from llmroute.core.series import MAX_LOAD
from llmroute.render import build_proxy_config
from llmroute.spec.route import LLMRoute, LLMRouteSpec, ObjectMeta
from tests.unit.core_helpers import T0, series, spec

SETTINGS = settings(max_examples=200)  # the rest: the llmroute profile (tests/unit/conftest.py)
MAX_REPLICAS = 10000  # the schema's bound on proxy.maxReplicas

TARGETS = st.one_of(
    st.sampled_from([5e-324, 1e-300, 1e-6, 0.001, 1.0, 40.0, 1e9]),
    st.floats(min_value=5e-324, max_value=1e9),
)
REPLICAS = st.one_of(st.sampled_from([1, 2, MAX_REPLICAS - 1, MAX_REPLICAS]), st.integers(1, MAX_REPLICAS))
LOADS = st.one_of(
    st.sampled_from([math.nan, 0.0, 1e-12, 1e15, 1e300]),
    st.floats(min_value=0, max_value=1e15),
)


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    policies = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["Pods", "Percent"]),
                    "value": st.sampled_from([1, 100, 10000]) | st.integers(1, 10000),
                    "periodSeconds": st.sampled_from([1, 15, 60, 1800]) | st.integers(1, 1800),
                }
            ),
            min_size=1,
            max_size=3,
        )
    )
    return {
        "stabilizationWindowSeconds": draw(st.sampled_from([0, 1, 300, 3600]) | st.integers(0, 3600)),
        "selectPolicy": draw(st.sampled_from(["Max", "Min", "Disabled"])),
        "policies": policies,
    }


@st.composite
def scaling_specs(draw: st.DrawFn) -> LLMRouteSpec:
    hi = draw(REPLICAS)
    lo = draw(st.sampled_from([1, hi]) | st.integers(1, hi))
    scaling: dict[str, Any] = {
        "metric": {"targetPerReplica": draw(TARGETS)},
        "tolerance": draw(st.sampled_from([0.0, 0.1, 1.0]) | st.floats(0, 1)),
        "behavior": {"scaleUp": draw(rules()), "scaleDown": draw(rules())},
        "fallback": draw(
            st.sampled_from([{}, {"whenMetricsUnavailable": "Replicas", "replicas": 1}])
            | st.builds(
                lambda r, s: {"whenMetricsUnavailable": "Replicas", "replicas": r, "staleAfterSeconds": s},
                st.integers(1, MAX_REPLICAS),
                st.integers(30, 86400),
            )
        ),
        "predictive": draw(
            st.sampled_from(
                [
                    {"enabled": False},
                    {},
                    {"minHistoryHours": 1, "leadTimeSeconds": 0, "quantile": 0.5},
                    {"minHistoryHours": 1, "leadTimeSeconds": 7200, "quantile": 0.999, "lookbackDays": 1},
                ]
            )
        ),
    }
    if draw(st.booleans()):
        s_lo = draw(st.integers(0, hi))
        s_hi = draw(st.integers(max(1, s_lo), hi))
        scaling["schedules"] = [
            {"name": "always", "start": "00:00", "end": "23:59", "minReplicas": s_lo, "maxReplicas": s_hi}
        ]
    return spec(proxy={"minReplicas": lo, "maxReplicas": hi}, scaling=scaling)


@st.composite
def histories(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(1, 200))
    kind = draw(st.sampled_from(["random", "constant", "nan-run"]))
    if kind == "constant":
        values = np.full(n, draw(LOADS))
    else:
        values = np.asarray(draw(st.lists(LOADS, min_size=n, max_size=n)), dtype=np.float64)
    if kind == "nan-run":
        a = draw(st.integers(0, n - 1))
        values[a : draw(st.integers(a, n))] = np.nan
    return values


@SETTINGS
@given(
    scaling_specs(),
    histories(),
    st.integers(0, 2 * MAX_REPLICAS),
    st.integers(-10, 240),
)
def test_recommend_stays_in_bounds_and_never_scales_down_without_data(
    route: LLMRouteSpec, load: np.ndarray, current: int, minutes_after_end: int
) -> None:
    """Whatever the load, ``final`` is within the bounds in force; with no fresh data (none, all NaN,
    stale) or a missing last minute it is never below the current count (unless above the maximum)."""
    now = T0 + timedelta(minutes=len(load) + minutes_after_end)
    state = ScalerState()
    b = bounds(route, now)
    for _ in range(2):  # a second decision reads the memory the first one left
        result = recommend(route, now=now, current_replicas=current, history=series(load), state=state)
        final = result.recommendation.final
        assert b.lo <= final <= b.hi, (final, b)
        known = load[: max(0, len(load) + min(0, minutes_after_end))]
        if result.stale or not np.isfinite(known).any():
            assert result.stale
            assert final >= min(current, b.hi), (final, current, result.recommendation.reason)
        elif math.isnan(known[-1]):
            assert final >= min(current, b.hi), (final, current, result.recommendation.reason)
        state, current = result.state, final
        now += timedelta(seconds=30)


TIER_LIMITS = st.one_of(st.none(), st.sampled_from([1, 2, 59, 10**9]), st.integers(1, 10**9))
TOKEN_LIMITS = st.one_of(st.none(), st.sampled_from([1, 10**12]), st.integers(1, 10**12))


@st.composite
def limit_specs(draw: st.DrawFn) -> LLMRouteSpec:
    tiers = []
    for i in range(draw(st.integers(1, 4))):
        tier: dict[str, Any] = {
            "name": f"t{i}",
            "priority": draw(st.integers(0, 1000)),
            "sheddable": draw(st.booleans()),
        }
        for field, strategy in (("requestsPerMinute", TIER_LIMITS), ("tokensPerMinute", TOKEN_LIMITS)):
            value = draw(strategy)
            if value is not None:
                tier[field] = value
        if draw(st.booleans()):
            tier["perClient"] = {"requestsPerMinute": draw(st.integers(1, 10**9))}
        tiers.append(tier)
    step = draw(st.sampled_from([0.5, 1e-9, 0.999999]) | st.floats(0, 1, exclude_min=True, exclude_max=True))
    floor = draw(st.sampled_from([0.0, 1e-9, 0.1]) | st.floats(0, 1, exclude_max=True))
    schedules = [
        {
            "name": "w",
            "start": "00:00",
            "end": "23:59",
            "multiplier": draw(
                st.sampled_from([5e-324, 1e-300, 0.01, 100.0]) | st.floats(0, 100, exclude_min=True)
            ),
        }
    ]
    return spec(
        rateLimits={
            "tiers": tiers,
            "schedules": schedules if draw(st.booleans()) else [],
            "adaptiveShedding": {"stepFactor": step, "minFactor": floor, "restoreAfterSeconds": 0},
        }
    )


@SETTINGS
@given(
    limit_specs(),
    st.integers(0, 2 * MAX_REPLICAS),
    st.integers(0, 2 * MAX_REPLICAS),
    st.lists(st.one_of(st.none(), st.floats(0, 10), st.just(math.inf)), min_size=1, max_size=80),
)
def test_rate_limit_shares_are_positive_and_sum_to_the_global_figure(
    route: LLMRouteSpec, current: int, desired: int, utilisation: list[float | None]
) -> None:
    """Over a run of decisions (shedding stepping up and down), each replica's share of a non-zero limit
    is at least 1 and the shares together exceed the global figure only by the floor of 1 a minute."""
    state = ShedState()
    now = T0
    tiers = {t.name: t for t in route.rate_limits.tiers}
    for u in utilisation:
        result = plan(
            route,
            now=now,
            current_replicas=current,
            desired_replicas=desired,
            utilisation=u,
            at_max=True,
            state=state,
        )
        divisor = result.divisor
        assert divisor == max(1, current, desired)
        for limit in result.limits:
            tier = tiers[limit.tier]
            for configured, total, each in (
                (tier.requests_per_minute, limit.requests_per_minute, limit.per_replica_requests_per_minute),
                (tier.tokens_per_minute, limit.tokens_per_minute, limit.per_replica_tokens_per_minute),
            ):
                if configured is None:
                    assert total is None and each is None
                    continue
                assert total is not None and each is not None
                assert total >= 0 and each >= 0
                assert total <= math.floor(configured * limit.multiplier + 1e-6) or total == 1
                if total > 0:
                    assert each >= 1
                    assert each * divisor <= max(total, divisor), (each, divisor, total)
                if limit.shed_factor > 0:  # only a tier shed entirely (minFactor 0) gets 0
                    assert total > 0, (configured, limit)
        config = build_proxy_config(
            LLMRoute(metadata=ObjectMeta(name="r"), spec=route),
            limits=result.limits,
            divisor=divisor,
            replicas=divisor,
        )
        for rendered, limit in zip(config.limits.tiers, result.limits, strict=True):
            client = tiers[limit.tier].per_client
            if client is not None and limit.shed_factor > 0:
                assert rendered.client_requests_per_minute, (rendered, limit)
                assert rendered.global_client_requests_per_minute, (rendered, limit)
        state = result.state
        now += timedelta(seconds=61)


@pytest.mark.parametrize(("target", "load"), [(5e-324, 1e-12), (1e-300, 1e9)])
def test_recommend_with_a_tiny_target_per_replica(target: float, load: float) -> None:
    """A load / targetPerReplica beyond any float (inf) is a count capped at int32, not an OverflowError
    that leaves the route undecided: the route scales up as fast as its policies allow, to maxReplicas."""
    route = spec(proxy={"maxReplicas": 10}, scaling={"metric": {"targetPerReplica": target}})
    state, current, counts = ScalerState(), 1, []
    for k in range(10, 15):
        result = recommend(
            route,
            now=T0 + timedelta(minutes=k),
            current_replicas=current,
            history=series(np.full(k, load)),
            state=state,
        )
        state, current = result.state, result.recommendation.final
        counts.append(current)
    assert result.recommendation.reactive == MAX_COUNT
    assert counts == sorted(counts) and counts[0] > 1 and counts[-1] == 10


@SETTINGS
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=50))
def test_a_load_series_holds_measurements_or_nan(values: list[float]) -> None:
    """Every value a LoadSeries keeps is NaN or a load from 0 to MAX_LOAD; the others are read as NaN."""
    kept = series(values).values
    assert kept.shape == (len(values),)
    for given_value, value in zip(values, kept, strict=True):
        if 0 <= given_value <= MAX_LOAD:
            assert value == given_value
        else:
            assert math.isnan(value)


@pytest.mark.parametrize(
    ("multiplier", "shedding"),
    [
        (5e-324, {"stepFactor": 0.5}),  # multiplier x shed factor underflows to 0.0
        (1.0, {"stepFactor": 0.01, "minFactor": 1e-9}),  # shed to 1e-9, which rounded to 6 places is 0
    ],
)
def test_a_tier_shed_to_a_positive_factor_keeps_a_positive_limit(
    multiplier: float, shedding: dict[str, float]
) -> None:
    """Found by the property above: a positive multiplier and shed factor whose product underflows, or a
    shed factor below 1e-6, gave a tier (or its clients) a limit of 0, refusing every request."""
    tier = {"name": "free", "requestsPerMinute": 1, "perClient": {"requestsPerMinute": 1}}
    route = spec(
        rateLimits={
            "tiers": [tier, {"name": "gold", "priority": 10}],
            "schedules": [{"name": "w", "start": "00:00", "end": "23:59", "multiplier": multiplier}],
            "adaptiveShedding": shedding,
        }
    )
    result = plan(
        route,
        now=T0,
        current_replicas=1,
        desired_replicas=1,
        utilisation=1.0,
        at_max=True,
        state=ShedState(),
    )
    free = result.limits[0]
    assert 0 < free.shed_factor < 1
    assert free.requests_per_minute == free.per_replica_requests_per_minute == 1
    config = build_proxy_config(
        LLMRoute(metadata=ObjectMeta(name="r"), spec=route), limits=result.limits, divisor=1, replicas=1
    )
    assert config.limits.tiers[0].client_requests_per_minute == 1
    assert config.limits.tiers[0].global_client_requests_per_minute == 1
