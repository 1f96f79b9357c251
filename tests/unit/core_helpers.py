"""Builders shared by the decision-core and simulator tests: specs, series and fixed datetimes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from llmroute.core.scaling import ScalerState, ScalingResult, recommend
from llmroute.core.series import LoadSeries
from llmroute.spec.route import LLMRouteSpec
from tests.cases import with_identity

T0 = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)  # a Monday
UPSTREAM = {"name": "primary", "url": "http://upstream.invalid/v1", "model": "m"}


def spec(**fields: Any) -> LLMRouteSpec:
    """A route spec with one upstream and ``fields`` (camelCase, nested dicts) on top of the defaults."""
    body: dict[str, Any] = {"upstreams": [dict(UPSTREAM)]}
    body.update(copy.deepcopy(fields))
    body["rateLimits"] = with_identity(body.get("rateLimits"))
    return LLMRouteSpec.model_validate(body)


def scaling_spec(max_replicas: int = 100, target: float = 40.0, **scaling: Any) -> LLMRouteSpec:
    scaling.setdefault("metric", {"targetPerReplica": target})
    return spec(proxy={"maxReplicas": max_replicas}, scaling=scaling)


def series(values: list[float] | np.ndarray, start: datetime = T0) -> LoadSeries:
    return LoadSeries(start, 60, np.asarray(values, dtype=np.float64))


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def drive(
    route: LLMRouteSpec, load: list[float] | np.ndarray, current: int, start: datetime = T0
) -> tuple[list[int], list[ScalingResult]]:
    """Decide once a minute over ``load`` (decision ``t`` sees minutes ``< t``), as the simulator does."""
    values = np.asarray(load, dtype=np.float64)
    state = ScalerState()
    out: list[int] = []
    results: list[ScalingResult] = []
    for t in range(1, len(values) + 1):
        result = recommend(
            route,
            now=start + minutes(t),
            current_replicas=current,
            history=series(values[:t], start),
            state=state,
        )
        state = result.state
        current = result.recommendation.final
        out.append(current)
        results.append(result)
    return out, results
