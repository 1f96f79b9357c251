"""Weekly wall-clock windows (``TimeWindow``): is a window open at a given instant?

Times are compared on the wall clock of the window's time zone, so windows follow daylight-saving changes:
``08:00-18:00`` opens at 08:00 local time on both sides of a change. A window whose ``end`` is earlier than
its ``start`` crosses midnight and belongs to the day it starts on: ``Fri 22:00-06:00`` is open from Friday
22:00 until Saturday 06:00, and not on Friday morning. On the day the clocks go back the repeated hour is
inside a window if its wall-clock time is; on the day they go forward the skipped hour simply does not occur.
An ``end`` of ``24:00`` is the end of the window's day (midnight after it, however long that day is), so
``00:00-24:00`` covers the whole day, its last minute too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import TypeVar
from zoneinfo import ZoneInfo

from llmroute.spec.base import END_OF_DAY, WEEKDAYS, TimeWindow, parse_hhmm

W = TypeVar("W", bound=TimeWindow)


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=256)
def _hhmm(value: str) -> time:
    return parse_hhmm(value)


def local_time(now: datetime, timezone: str) -> datetime:
    """``now`` on the wall clock of ``timezone`` (``now`` must be timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(_zone(timezone))


def is_open(window: TimeWindow, now: datetime) -> bool:
    """Whether ``window`` is open at ``now``."""
    local = local_time(now, window.timezone)
    clock = local.time().replace(tzinfo=None)
    start = _hhmm(window.start)
    today = WEEKDAYS[local.weekday()]
    if window.end == END_OF_DAY:
        return today in window.days and clock >= start
    end = _hhmm(window.end)
    if start < end:
        return today in window.days and start <= clock < end
    if today in window.days and clock >= start:
        return True
    yesterday = WEEKDAYS[(local.date() - timedelta(days=1)).weekday()]
    return yesterday in window.days and clock < end


def open_windows(windows: Iterable[W], now: datetime) -> list[W]:
    """The windows open at ``now``, in their given order."""
    return [w for w in windows if is_open(w, now)]


def names(windows: Sequence[TimeWindow]) -> str:
    return ",".join(w.name for w in windows)
