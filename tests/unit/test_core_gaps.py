"""Missing data in the decision core: a metrics gap never shortens the scale-down window, and a minute the
caller marks missing (NaN) is never trusted for a scale-down. Explicit ``now`` throughout, no clock."""

from __future__ import annotations

import math

import numpy as np

from llmroute.core.scaling import ScalerState, recent_gap, recommend
from llmroute.core.series import LoadSeries
from tests.unit.core_helpers import T0, minutes, scaling_spec, series

STEADY = 150
NAN = math.nan


def run(load: np.ndarray, current: int, until: int | None = None) -> list[int]:
    """Decide once a minute over ``load`` (decision ``t`` sees minutes ``< t``), like the simulator."""
    route = scaling_spec()
    state = ScalerState()
    out: list[int] = []
    for t in range(1, (until or len(load)) + 1):
        result = recommend(
            route, now=T0 + minutes(t), current_replicas=current, history=series(load[:t]), state=state
        )
        state, current = result.state, result.recommendation.final
        out.append(current)
    return out


def test_recent_gap_ignores_the_start_of_history() -> None:
    assert not recent_gap(np.array([NAN, NAN, 5.0, 5.0]), 5)  # history starts late: not a gap
    assert recent_gap(np.array([5.0, NAN, 5.0, 5.0]), 5)
    assert not recent_gap(np.array([5.0, NAN, 5.0, 5.0, 5.0]), 3)  # older than the window
    assert recent_gap(np.array([5.0, 5.0, NAN]), 1)  # the last minute itself
    assert not recent_gap(np.array([NAN, NAN]), 5)


def test_no_data_records_its_hold_in_the_scale_down_window() -> None:
    route = scaling_spec()
    history = series(np.concatenate([np.full(STEADY, 800.0), np.full(10, NAN)]))
    now = T0 + minutes(STEADY + 10)
    result = recommend(route, now=now, current_replicas=19, history=history, state=ScalerState())
    assert result.stale and result.recommendation.final == 19
    assert result.state.memory.recommendations[-1] == (now.timestamp(), 19)


def test_steady_load_after_a_gap_never_scales_down() -> None:
    # 800 req/s needs 19; the gap is longer than staleAfterSeconds (the no-data path runs); when data
    # returns its first minute reads low, as a rate over a window that overlaps the gap does (300)
    load = np.concatenate([np.full(STEADY, 800.0), np.full(10, NAN), [300.0], np.full(20, 800.0)])
    replicas = run(load, current=19)
    before = replicas[STEADY - 1]  # the count the steady load settled at before the gap
    assert before >= 19 and min(replicas[STEADY - 1 :]) == before


def test_a_real_drop_after_a_gap_waits_a_full_window_of_data() -> None:
    back = STEADY + 10  # first minute with data again
    load = np.concatenate([np.full(STEADY, 800.0), np.full(10, NAN), np.full(20, 300.0)])
    replicas = run(load, current=19)
    before = replicas[STEADY - 1]
    # decision t sees minutes < t and is replicas[t - 1]; the window is 300 s: minutes back .. back + 4
    # must all be seen before the first scale-down, at decision back + 5
    assert all(r == before for r in replicas[STEADY - 1 : back + 4])
    assert replicas[back + 4] <= 8


def test_a_minute_marked_missing_blocks_scale_down_even_while_fresh() -> None:
    # one NaN minute (a rate that overlapped a gap, marked missing by the caller) inside the history: the
    # data is still fresh (the nowcast path runs), yet nothing scales down until it is a window old
    route = scaling_spec()
    load = np.concatenate([np.full(STEADY, 800.0), [NAN], np.full(3, 300.0)])
    state = ScalerState()
    result = recommend(
        route, now=T0 + minutes(len(load)), current_replicas=19, history=series(load), state=state
    )
    assert not result.stale
    assert result.recommendation.final == 19
    assert "metricsGap" in result.recommendation.limited_by
    assert result.recommendation.reactive is not None and result.recommendation.reactive < 19


def test_a_gap_at_a_coarser_step_is_the_same_gap() -> None:
    route = scaling_spec()
    values = np.concatenate([np.full(STEADY // 2, 800.0), [NAN], np.full(1, 300.0)])  # 2-minute steps
    history = LoadSeries(T0, 120, values)
    now = T0 + minutes(len(values) * 2)
    result = recommend(route, now=now, current_replicas=19, history=history, state=ScalerState())
    assert result.recommendation.final == 19 and "metricsGap" in result.recommendation.limited_by
