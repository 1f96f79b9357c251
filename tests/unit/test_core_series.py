"""LoadSeries: the regular load history every decision reads."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from llmroute.core.series import LoadSeries
from tests.unit.core_helpers import T0, minutes, series


def test_geometry_and_last_value() -> None:
    s = series([1.0, 2.0, math.nan])
    assert len(s) == 3
    assert s.end == T0 + minutes(3)
    assert s.last_value() == 2.0
    assert s.last_time() == T0 + minutes(2)  # the end of the last bucket with data
    assert s.staleness(T0 + minutes(5)) == 180.0
    assert s.index_at(T0 + timedelta(seconds=119)) == 1


def test_empty_series_has_no_value_and_no_staleness() -> None:
    s = LoadSeries.empty(T0)
    assert s.last_value() is None
    assert s.staleness(T0) is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        LoadSeries(datetime(2025, 1, 1), 60, np.zeros(1))


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, [0.0, 1.0, 2.0, 3.0]),
        (T0 + minutes(1), None, [1.0, 2.0, 3.0]),
        (None, T0 + minutes(2), [0.0, 1.0]),
        (T0 + timedelta(seconds=30), T0 + timedelta(seconds=210), [1.0, 2.0]),
        (T0 + minutes(9), None, []),
    ],
)
def test_slice_keeps_whole_buckets_inside_the_range(
    start: datetime | None, end: datetime | None, expected: list[float]
) -> None:
    assert series([0.0, 1.0, 2.0, 3.0]).slice(start, end).values.tolist() == expected


def test_until_shows_only_complete_buckets() -> None:
    s = series([5.0, 6.0, 7.0])
    assert s.until(T0 + timedelta(seconds=150)).values.tolist() == [5.0, 6.0]


def test_to_minutes_averages_finer_steps_and_keeps_gaps() -> None:
    s = LoadSeries(T0, 30, np.array([10.0, 20.0, math.nan, 40.0, math.nan, math.nan, 7.0, 9.0]))
    m = s.to_minutes()
    assert m.step_seconds == 60 and m.start == T0
    assert m.values[:2].tolist() == [15.0, 40.0]
    assert math.isnan(m.values[2])
    assert m.values[3] == 8.0


def test_to_minutes_aligns_an_unaligned_start() -> None:
    s = LoadSeries(T0 + timedelta(seconds=30), 30, np.array([1.0, 3.0, 5.0]))
    m = s.to_minutes()
    assert m.start == T0
    assert m.values.tolist() == [1.0, 4.0]


def test_from_samples_buckets_and_fills_gaps_with_nan() -> None:
    s = LoadSeries.from_samples([(T0, 1.0), (T0 + timedelta(seconds=20), 3.0), (T0 + minutes(2), 5.0)])
    assert s.start == T0.astimezone(UTC)
    assert s.values[0] == 2.0 and math.isnan(s.values[1]) and s.values[2] == 5.0
