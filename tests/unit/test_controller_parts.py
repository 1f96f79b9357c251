"""Pure parts of the operator runtime: condition transitions, the history ring, the batched PromQL."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmroute.controller.history import HistoryBuffer
from llmroute.decide.conditions import get, set_condition
from llmroute.prom.queries import batched, overrides
from llmroute.spec import LLMRoute
from llmroute.spec.status import Condition
from tests.cases import route

T0, T1 = "2026-03-01T10:00:00Z", "2026-03-01T10:05:00Z"


def test_condition_keeps_transition_time_while_status_holds() -> None:
    conds = set_condition([], "Ready", "True", "Reconciled", "ok", now=T0, generation=1)
    conds = set_condition(conds, "Ready", "True", "Reconciled", "still ok", now=T1, generation=2)
    ready = get(conds, "Ready")
    assert ready is not None
    assert (ready.last_transition_time, ready.message, ready.observed_generation) == (T0, "still ok", 2)


def test_condition_transition_time_moves_on_status_change() -> None:
    conds = set_condition([], "MetricsAvailable", "True", "Available", "", now=T0, generation=1)
    conds = set_condition(
        conds, "MetricsAvailable", "False", "PrometheusUnavailable", "refused", now=T1, generation=1
    )
    cond = get(conds, "MetricsAvailable")
    assert cond is not None and cond.last_transition_time == T1 and cond.reason == "PrometheusUnavailable"


def test_conditions_are_kept_in_a_stable_order() -> None:
    conds: list[Condition] = []
    for type_ in ("Degraded", "Ready", "FailedOver", "MetricsAvailable", "ScalingLimited"):
        conds = set_condition(conds, type_, "False", "X", "", now=T0, generation=1)
    assert [c.type for c in conds] == [
        "Ready",
        "MetricsAvailable",
        "ScalingLimited",
        "FailedOver",
        "Degraded",
    ]


@pytest.mark.parametrize(
    ("puts", "end", "expected"),
    [
        ([(0, 1.0), (60, 2.0), (120, 3.0)], 120, [1.0, 2.0, 3.0]),
        ([(0, 1.0), (180, 4.0)], 180, [1.0, math.nan, math.nan, 4.0]),
        ([(30, 5.0)], 59, [5.0]),  # a sample lands in the step that holds it
    ],
)
def test_history_buffer_places_samples_on_the_grid(
    puts: list[tuple[int, float]], end: int, expected: list[float]
) -> None:
    buf = HistoryBuffer(step=60, capacity=10)
    for ts, value in puts:
        buf.put(1_000_020 * 60 + ts, value)
    start, values = buf.window(1_000_020 * 60 + end)
    got = values[-len(expected) :]
    assert np.array_equal(got, np.array(expected), equal_nan=True)
    assert start % 60 == 0


def test_history_buffer_rolls_forward_and_forgets_the_oldest() -> None:
    buf = HistoryBuffer(step=60, capacity=3)
    for i in range(5):
        buf.put(i * 60, float(i))
    start, values = buf.window(4 * 60)
    assert start == 2 * 60 and values.tolist() == [2.0, 3.0, 4.0]
    assert buf.last_time() == 4 * 60
    buf.put(100 * 60, 9.0)  # a long gap clears everything older than the capacity
    _, values = buf.window(100 * 60)
    assert np.isnan(values[:-1]).all() and values[-1] == 9.0


def test_history_buffer_resized_keeps_the_newest_samples_and_makes_room_for_older_ones() -> None:
    buf = HistoryBuffer(step=60, capacity=3)
    for i in range(5):
        buf.put(i * 60, float(i))
    buf.resize(5)  # a longer look-back: the held samples stay, older slots wait to be filled
    start, values = buf.window(4 * 60)
    assert start == 0 and np.isnan(values[:2]).all() and values[2:].tolist() == [2.0, 3.0, 4.0]
    buf.put(0, 0.0)  # a backfilled older minute now has a slot
    buf.put(60, 1.0)
    assert buf.window(4 * 60)[1].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    buf.resize(2)  # a shorter one drops the oldest
    start, values = buf.window(4 * 60)
    assert start == 3 * 60 and values.tolist() == [3.0, 4.0]
    buf.put(5 * 60, 5.0)  # and rolls on at its new size
    assert buf.window(5 * 60)[1].tolist() == [4.0, 5.0]
    empty = HistoryBuffer(step=60, capacity=3)
    empty.resize(4)
    assert empty.window(0)[1].size == 0 and empty.values.shape == (4,)
    with pytest.raises(ValueError, match="capacity"):
        empty.resize(0)


def test_batched_queries_group_by_route_and_never_name_a_route() -> None:
    queries = batched(window_seconds=90, rate_window="30s")
    for name, query in queries.items():
        assert "by (route" in query, name
        assert "route=" not in query, name
    assert "[90s]" in queries["upstream_errors"] and "[30s]" in queries["rps"]


def test_route_overrides_substitute_route_and_namespace() -> None:
    obj = route("chat")
    obj["metadata"]["namespace"] = "team-a"
    obj["spec"]["prometheus"] = {"queries": {"errorRate": 'my_errors{route="$route",ns="$namespace"}'}}
    obj["spec"]["scaling"] = {"metric": {"type": "Custom", "query": 'sum(queue{svc="$route"})'}}
    q = overrides(LLMRoute.from_object(obj))
    assert q.error_rate == 'my_errors{route="team-a/chat",ns="team-a"}'
    assert q.load == 'sum(queue{svc="team-a/chat"})'
    assert q.any()
