"""Property test of one whole reconcile decision (``decide``) over cycles of generated observations: odd
metric values (zero, negative from a custom query, 1e300), missing metrics, gaps in the history, a
Deployment at any scale. The replicas written stay within the bounds and never drop without fresh data,
and the status is JSON the apiserver accepts (no NaN or infinity) that reads back as the next cycle's
previous status."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from llmroute.core.observed import MetricKey, RouteMetrics, Scale, UpstreamMetrics
from llmroute.core.schedule import bounds
from llmroute.decide import Observed, decide
from llmroute.spec.route import LLMRoute
from llmroute.spec.status import LLMRouteStatus

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
VALUE = st.one_of(st.sampled_from([0.0, -5.0, 1e-300, 1e15, 1e300]), st.floats(0, 1e4))
FRACTION = st.one_of(st.none(), st.floats(0, 1))
MINUTES = 40

ROUTE = LLMRoute.from_object(
    {
        "metadata": {"name": "r", "namespace": "ns", "generation": 1},
        "spec": {
            "upstreams": [
                {"name": "a", "url": "http://a.invalid/v1", "model": "m"},
                {"name": "b", "url": "http://b.invalid/v1", "model": "m", "group": 1},
            ],
            "proxy": {"minReplicas": 2, "maxReplicas": 50},
            "scaling": {"metric": {"targetPerReplica": 10}, "predictive": {"minHistoryHours": 1}},
            "failover": {"minRequests": 1, "minDwellSeconds": 0, "cooldownSeconds": 0},
            "alerts": {"requestsPerSecondAbove": 100, "errorRateAbove": 0.1, "latencyP95SecondsAbove": 5},
            "rateLimits": {
                "identity": {"type": "Header"},
                "tiers": [{"name": "gold", "priority": 10, "requestsPerMinute": 600}, {"name": "free"}],
            },
        },
    }
)


@st.composite
def cycles(draw: st.DrawFn) -> tuple[RouteMetrics | None, np.ndarray, Scale | None]:
    metrics = None
    if draw(st.booleans()):
        keys: st.SearchStrategy[MetricKey] = st.sampled_from(
            ["rps", "inflight", "tokens", "error_rate", "latency_p95", "ratelimited"]
        )
        upstream = st.builds(UpstreamMetrics, st.none() | VALUE, FRACTION, st.none() | VALUE, FRACTION)
        metrics = RouteMetrics(
            NOW.timestamp() - draw(st.sampled_from([1, 600])),
            draw(st.dictionaries(keys, VALUE)),
            draw(st.dictionaries(st.sampled_from(["a", "b", "gone"]), upstream)),
            draw(st.sampled_from(["1m", "4m"])),
            draw(st.none() | st.sampled_from([0.0, 1.0, 4.0])),
        )
    history = np.asarray(draw(st.lists(st.just(math.nan) | VALUE, min_size=MINUTES, max_size=MINUTES)))
    scale = draw(st.none() | st.builds(Scale, st.integers(0, 200), st.integers(0, 200)))
    return metrics, history, scale


@settings(max_examples=60)  # the rest: the llmroute profile (tests/unit/conftest.py)
@given(st.lists(cycles(), min_size=1, max_size=3))
def test_decide_writes_bounded_replicas_and_a_status_the_apiserver_accepts(
    steps: list[tuple[RouteMetrics | None, np.ndarray, Scale | None]],
) -> None:
    previous = LLMRouteStatus()
    now = NOW
    b = bounds(ROUTE.spec, now)
    for metrics, history, scale in steps:
        obs = Observed(
            now=now,
            metrics=metrics,
            metrics_error=None if metrics else "connection refused",
            history_start=(now - timedelta(minutes=MINUTES)).timestamp() // 60 * 60,
            history=history,
            history_step=60,
            scale=scale,
            conflicts=[],
            previous=previous,
        )
        out = decide(ROUTE, obs)
        assert b.lo <= out.initial_replicas <= b.hi
        if out.replicas is not None and scale is not None:
            assert b.lo <= out.replicas <= b.hi
            known = history[~np.isnan(history) & (history >= 0) & (history <= 1e15)]
            if metrics is None or not known.size:
                assert out.replicas >= min(scale.spec_replicas, b.hi), out.status.recommendation
        wire = out.status.to_wire()
        text = json.dumps(wire, allow_nan=False)  # the status patch: NaN or inf would be refused
        previous = LLMRouteStatus.model_validate(json.loads(text))
        if out.config is not None:
            out.config.dumps()
        now += timedelta(seconds=30)
