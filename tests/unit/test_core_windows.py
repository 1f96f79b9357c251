"""Weekly wall-clock windows: across midnight, on weekdays, and across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",  # the clocks change at midnight
    "America/St_Johns",  # -03:30 / -02:30
    "Asia/Kolkata",  # +05:30, no daylight saving
    "Australia/Adelaide",  # +09:30 / +10:30, southern hemisphere
    "Australia/Lord_Howe",  # a daylight-saving change of half an hour
    "Pacific/Chatham",  # +12:45 / +13:45
]


@pytest.mark.parametrize("tz", ZONES)
def test_a_whole_day_window_covers_its_last_minute(tz: str) -> None:
    zone = ZoneInfo(tz)
    weekend = window("00:00", "24:00", ["Sat", "Sun"], tz)
    # 2025-03-29/30 and 2025-10-25/26 are weekends with a daylight-saving change in Europe
    for sat in (datetime(2025, 3, 29, tzinfo=zone), datetime(2025, 10, 25, tzinfo=zone)):
        for when, expected in [
            (sat.replace(hour=0, minute=0), True),
            (sat.replace(hour=23, minute=59, second=59), True),
            (sat.replace(day=sat.day + 1, hour=23, minute=59, second=30), True),  # Sunday's last minute
            (sat.replace(day=sat.day + 2, hour=0, minute=0), False),  # Monday
            (sat.replace(day=sat.day - 1, hour=23, minute=59, second=59), False),  # Friday's last second
        ]:
            assert is_open(weekend, when) is expected, when
    evening = window("18:00", "24:00", tz=tz)
    assert is_open(evening, datetime(2025, 3, 5, 23, 59, 59, tzinfo=zone))
    assert not is_open(evening, datetime(2025, 3, 6, 0, 0, tzinfo=zone))


def test_24_00_is_an_end_only() -> None:
    with pytest.raises(ValueError, match="start"):
        window("24:00", "06:00")
    with pytest.raises(ValueError, match="end"):
        window("00:00", "24:01")


@settings(max_examples=300, deadline=None)
@given(
    tz=st.sampled_from(ZONES),
    split=st.integers(1, 24 * 60 - 1),
    when=st.datetimes(datetime(2024, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
)
def test_a_day_split_in_two_windows_has_exactly_one_open_at_every_instant(
    tz: str, split: int, when: datetime
) -> None:
    """``00:00-S`` and ``S-24:00``, and ``S-00:00`` crossing midnight alike: one window is open at every
    instant, across midnight, daylight-saving changes both ways and leap days."""
    at = f"{split // 60:02d}:{split % 60:02d}"
    for late_end in ("24:00", "00:00"):
        early, late = window("00:00", at, tz=tz), window(at, late_end, tz=tz)
        assert is_open(early, when) != is_open(late, when), (at, late_end, when.astimezone(ZoneInfo(tz)))
