"""Weekly wall-clock windows: across midnight, on weekdays, and across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from llmroute.core.windows import is_open
from llmroute.spec.base import TimeWindow

NY = ZoneInfo("America/New_York")


def window(start: str, end: str, days: list[str] | None = None, tz: str = "UTC") -> TimeWindow:
    body: dict[str, Any] = {"name": "w", "start": start, "end": end, "timezone": tz}
    if days is not None:
        body["days"] = days
    return TimeWindow.model_validate(body)


@pytest.mark.parametrize(
    ("w", "when", "expected"),
    [
        # a plain daytime window
        (window("08:00", "18:00"), datetime(2025, 3, 3, 8, 0, tzinfo=UTC), True),
        (window("08:00", "18:00"), datetime(2025, 3, 3, 18, 0, tzinfo=UTC), False),
        (window("08:00", "18:00"), datetime(2025, 3, 3, 7, 59, tzinfo=UTC), False),
        # across midnight: belongs to the day it starts on (Fri 22:00 - Sat 06:00)
        (window("22:00", "06:00", ["Fri"]), datetime(2025, 3, 7, 23, 0, tzinfo=UTC), True),
        (window("22:00", "06:00", ["Fri"]), datetime(2025, 3, 8, 5, 59, tzinfo=UTC), True),
        (window("22:00", "06:00", ["Fri"]), datetime(2025, 3, 8, 6, 0, tzinfo=UTC), False),
        (window("22:00", "06:00", ["Fri"]), datetime(2025, 3, 7, 5, 0, tzinfo=UTC), False),  # Friday morning
        (window("22:00", "06:00", ["Fri"]), datetime(2025, 3, 8, 23, 0, tzinfo=UTC), False),  # Saturday night
        # weekday filter
        (window("00:00", "23:59", ["Sat", "Sun"]), datetime(2025, 3, 3, 12, 0, tzinfo=UTC), False),
        (window("00:00", "23:59", ["Sat", "Sun"]), datetime(2025, 3, 9, 12, 0, tzinfo=UTC), True),
        # time zones: 09:00-17:00 New York is 14:00-22:00 UTC in winter, 13:00-21:00 UTC in summer
        (window("09:00", "17:00", tz="America/New_York"), datetime(2025, 3, 7, 14, 30, tzinfo=UTC), True),
        (window("09:00", "17:00", tz="America/New_York"), datetime(2025, 3, 7, 13, 30, tzinfo=UTC), False),
        (window("09:00", "17:00", tz="America/New_York"), datetime(2025, 3, 10, 13, 30, tzinfo=UTC), True),
        # spring forward (2025-03-09 02:00 -> 03:00): a window over the skipped hour opens at 03:00 local
        (window("01:30", "03:30", tz="America/New_York"), datetime(2025, 3, 9, 1, 45, tzinfo=NY), True),
        (window("01:30", "03:30", tz="America/New_York"), datetime(2025, 3, 9, 3, 15, tzinfo=NY), True),
        (window("01:30", "03:30", tz="America/New_York"), datetime(2025, 3, 9, 3, 30, tzinfo=NY), False),
        # fall back (2025-11-02 02:00 -> 01:00): both 01:15s are inside a 01:00-02:00 window
        (window("01:00", "02:00", tz="America/New_York"), datetime(2025, 11, 2, 5, 15, tzinfo=UTC), True),
        (window("01:00", "02:00", tz="America/New_York"), datetime(2025, 11, 2, 6, 15, tzinfo=UTC), True),
        (window("01:00", "02:00", tz="America/New_York"), datetime(2025, 11, 2, 7, 15, tzinfo=UTC), False),
        # a midnight-crossing window on the night the clocks go back
        (
            window("23:00", "02:00", ["Sat"], "America/New_York"),
            datetime(2025, 11, 2, 6, 30, tzinfo=UTC),
            True,
        ),
        (
            window("23:00", "02:00", ["Sat"], "America/New_York"),
            datetime(2025, 11, 2, 7, 30, tzinfo=UTC),
            False,
        ),
    ],
)
def test_window_open(w: TimeWindow, when: datetime, expected: bool) -> None:
    assert is_open(w, when) is expected


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(window("08:00", "18:00"), datetime(2025, 3, 3, 9, 0))
