"""Shared pydantic base model and small reusable types for the LLMRoute API.

Field names are snake_case in Python and camelCase on the wire (the CRD), exactly as Kubernetes spells them.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

Name = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]


class Model(BaseModel):
    """Immutable model with camelCase aliases that refuses unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as the Kubernetes API spells it (camelCase, unset optionals left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def parse_hhmm(value: str) -> time:
    """Parse an ``HH:MM`` string (already pattern-checked) into a :class:`datetime.time`."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def check_timezone(value: str) -> str:
    """Return ``value`` if it names an IANA time zone, else raise ``ValueError``."""
    if not re.fullmatch(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", value):
        raise ValueError(f"unknown time zone {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class SecretKeyRef(Model):
    """A key in a Secret in the route's namespace."""

    name: Name
    key: str = Field("api-key", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class TimeWindow(Model):
    """A weekly recurring window in a time zone: ``days`` at ``start`` until ``end`` (may cross midnight).

    A window that crosses midnight belongs to the day it starts on. Times are wall-clock times in
    ``timezone``, so windows follow daylight-saving changes.
    """

    name: Name
    timezone: str = "UTC"
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1, max_length=7)
    start: str = Field(pattern=HHMM)
    end: str = Field(pattern=HHMM)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _check(self) -> TimeWindow:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        if len(set(self.days)) != len(self.days):
            raise ValueError("days must not repeat")
        return self
