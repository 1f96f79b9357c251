"""Timestamps as the API, the status and the reports write them: RFC 3339 in UTC with a four-digit year.

``strftime("%Y")`` writes a year below 1000 with fewer digits on glibc (``999-01-01``), which is neither
RFC 3339 nor sortable as a string; these helpers always write four.
"""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(when: datetime) -> str:
    """``when`` as ``YYYY-MM-DDTHH:MM:SSZ`` (an aware time is converted to UTC, a naive one is taken as
    UTC); raises ``OverflowError`` when the conversion leaves years 1 to 9999."""
    u = when.astimezone(UTC) if when.tzinfo is not None else when
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


def rfc3339_ms(when: datetime) -> str:
    """``when`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (milliseconds, rounded down), as :func:`rfc3339`."""
    u = when.astimezone(UTC) if when.tzinfo is not None else when
    return rfc3339(u)[:-1] + f".{u.microsecond // 1000:03d}Z"


def epoch_rfc3339(seconds: float) -> str:
    """Seconds since the Unix epoch as :func:`rfc3339`."""
    return rfc3339(datetime.fromtimestamp(seconds, UTC))
