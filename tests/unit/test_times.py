"""Timestamps written by the status, the simulator and the reports: four-digit years, UTC, RFC 3339."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from llmroute.sim import hourly
from llmroute.spec.accesslog import canonical_time
from llmroute.spec.times import epoch_rfc3339, rfc3339, rfc3339_ms


def test_a_year_below_1000_keeps_four_digits() -> None:
    """strftime's %Y wrote 999-01-02 on glibc: not RFC 3339, and it sorts after 2025 as a string."""
    assert rfc3339(datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)) == "0999-01-02T03:04:05Z"
    assert rfc3339(datetime(1, 1, 1)) == "0001-01-01T00:00:00Z"
    assert sorted([rfc3339(datetime(2025, 1, 1)), rfc3339(datetime(999, 1, 1))])[0].startswith("0999")
    series = hourly.HourlySeries(datetime(999, 3, 2, tzinfo=UTC), np.ones(48), np.ones(48))
    assert hourly.profile(series, "UTC")["start"] == "0999-03-02T00:00:00Z"


def test_offsets_are_converted_and_milliseconds_rounded_down() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2025, 1, 2, 1, 0, tzinfo=plus2)) == "2025-01-01T23:00:00Z"
    assert rfc3339_ms(datetime(2025, 1, 2, 3, 4, 5, 678900, tzinfo=plus2)) == "2025-01-02T01:04:05.678Z"
    assert epoch_rfc3339(0) == "1970-01-01T00:00:00Z" and epoch_rfc3339(59.999) == "1970-01-01T00:00:59Z"
    assert canonical_time("0999-03-02T18:00:00+02:00") == "0999-03-02T16:00:00.000Z"
    with pytest.raises(OverflowError):
        rfc3339(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
