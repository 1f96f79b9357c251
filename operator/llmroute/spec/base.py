"""Shared pydantic base model and small reusable types for the LLMRoute API.

Field names are snake_case in Python and camelCase on the wire (the CRD), exactly as Kubernetes spells them.
The CRD's schema is generated from these models (:mod:`llmroute.spec.crd`): each field's
``Field(description=...)`` is what ``kubectl explain`` shows, Kubernetes list semantics ride in
``json_schema_extra`` (:func:`list_map`, :data:`LIST_SET`) and each model's CEL rules sit in its
``cel_rules`` beside the pydantic validator that enforces the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
END_OF_DAY = "24:00"
END_HHMM = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"  # an end may be the end of the day
TIMEZONE = r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$"
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

Name = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL)]
LIST_SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}
LIST_ATOMIC: dict[str, Any] = {"x-kubernetes-list-type": "atomic"}


def list_map(*keys: str) -> dict[str, Any]:
    """Schema extras for a list of objects keyed (and kept unique) by ``keys`` (list type ``map``)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


@dataclass(frozen=True)
class CelRule:
    """One CEL rule of the CRD (``x-kubernetes-validations``) on the object of the model that declares it.

    ``rule`` sees that object as ``self`` with its camelCase fields; ``field_path`` (e.g. ``.apiKey``) is the
    field the apiserver names in its error. The same check is enforced by a pydantic validator beside it.
    """

    rule: str
    message: str
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        out = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            out["fieldPath"] = self.field_path
        return out


# scheme://user:password@host: a credential written into a URL field would be stored in plain text in the
# LLMRoute and in the proxies' ConfigMap, outside any Secret
URL_USERINFO = r"^[a-zA-Z][-+.a-zA-Z0-9]*://[^/?#]*@"


def url_credentials_message(path: str, instead: str) -> str:
    """Why a URL field refuses ``user:password@``, naming the field and the Secret reference to use."""
    return (
        f"{path} must not carry credentials (user:password@): a URL is stored and shown in plain text, "
        f"outside any Secret; {instead}"
    )


def url_credentials_rule(field: str, path: str, instead: str) -> CelRule:
    """The CEL rule, on the model holding ``field`` (camelCase), that refuses credentials in that URL."""
    return CelRule(
        f"!has(self.{field}) || !self.{field}.matches('{URL_USERINFO}')",
        url_credentials_message(path, instead),
        f".{field}",
    )


def check_url_credentials(value: str | None, path: str, instead: str) -> str | None:
    """The pydantic side of :func:`url_credentials_rule`."""
    if value is not None and re.match(URL_USERINFO, value):
        raise ValueError(url_credentials_message(path, instead))
    return value


def _kubernetes_extras(schema: dict[str, Any], cls: type[Any]) -> None:
    """Put a model's ``cel_rules`` into its JSON schema as ``x-kubernetes-validations``."""
    rules: tuple[CelRule, ...] = getattr(cls, "cel_rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [r.to_schema() for r in rules]


class Model(BaseModel):
    """Immutable model with camelCase aliases that refuses unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
        json_schema_extra=_kubernetes_extras,
    )
    cel_rules: ClassVar[tuple[CelRule, ...]] = ()

    def to_wire(self) -> dict[str, Any]:
        """The object as the Kubernetes API spells it (camelCase, unset optionals left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def parse_hhmm(value: str) -> time:
    """Parse an ``HH:MM`` string (already pattern-checked) into a :class:`datetime.time`."""
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def check_timezone(value: str) -> str:
    """Return ``value`` if it names an IANA time zone, else raise ``ValueError``."""
    if not re.fullmatch(TIMEZONE, value):
        raise ValueError(f"unknown time zone {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class SecretKeyRef(Model):
    """A key in a Secret in the route's namespace."""

    name: Name = Field(description="Name of the Secret, in the LLMRoute's namespace.")
    key: str = Field(
        "api-key",
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key within the Secret whose value is used.",
    )


class TimeWindow(Model):
    """A weekly recurring window in a time zone: ``days`` at ``start`` until ``end`` (may cross midnight).

    A window that crosses midnight belongs to the day it starts on; ``end`` ``24:00`` is the end of the day
    (``00:00-24:00`` is the whole day, which no ``HH:MM`` end could reach). Times are wall-clock times in
    ``timezone``, so windows follow daylight-saving changes.
    """

    cel_rules: ClassVar[tuple[CelRule, ...]] = (
        CelRule("self.start != self.end", "start and end must differ"),
        CelRule(
            "timestamp('2000-01-01T00:00:00Z').getHours(self.timezone) >= 0",
            "timezone must be an IANA time zone such as Europe/Berlin",
            ".timezone",
        ),
    )

    name: Name = Field(description="Name of the window, unique in its list; shown in status and Events.")
    timezone: str = Field(
        "UTC",
        min_length=1,
        max_length=64,
        pattern=TIMEZONE,
        description="IANA time zone of start and end (e.g. Europe/Berlin); the window follows its "
        "daylight-saving changes.",
    )
    days: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS),
        min_length=1,
        max_length=7,
        json_schema_extra=LIST_SET,
        description="Days the window starts on (Mon..Sun); a window that crosses midnight belongs to the "
        "day it starts on. Default: every day.",
    )
    start: str = Field(
        pattern=HHMM, max_length=5, description="Opening time, HH:MM wall-clock time in timezone."
    )
    end: str = Field(
        pattern=END_HHMM,
        max_length=5,
        description="Closing time, HH:MM wall-clock time in timezone; earlier than start means the "
        "window ends the next day; 24:00 is the end of the day (00:00-24:00: the whole day).",
    )

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
