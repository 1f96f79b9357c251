"""The capped doubling shared by the failover cooldown and the proxy's passive ejection."""

from __future__ import annotations

import pytest

from llmroute.core.backoff import backoff_seconds


@pytest.mark.parametrize(
    ("count", "seconds"),
    [(0, 30.0), (1, 30.0), (2, 60.0), (3, 120.0), (4, 240.0), (5, 300.0), (10**6, 300.0)],
)
def test_each_failure_in_a_row_doubles_the_wait_up_to_the_cap(count: int, seconds: float) -> None:
    assert backoff_seconds(30.0, 300.0, count) == seconds


def test_a_count_beyond_a_floats_range_waits_the_cap() -> None:
    assert backoff_seconds(1e-9, 3600.0, 2000) == 3600.0
    assert backoff_seconds(1e300, 1e308, 5000) == 1e308
