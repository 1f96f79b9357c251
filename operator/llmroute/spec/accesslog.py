"""The access-log line: the contract between the proxy (writer) and ``llmroute report`` (reader).

When ``spec.accessLog.enabled`` is set, every proxy replica writes one JSON object per line on its stdout
(the Kubernetes convention: the container runtime keeps it and log shippers pick it up), one line per
request it answered on the LLM API paths, sampled at ``spec.accessLog.sampleRate``. Other proxy logs go to
stderr. Lines are never longer than a few hundred bytes and never carry a key, a prompt or a completion.

Version 1 (``"v": 1``). Readers skip lines whose ``v`` is newer than they know; a new field may be added
without a new version, a field is never renamed or given another meaning without one. ``null`` means not
known (e.g. no usage in the answer), never zero. :data:`FIELDS` lists every field with its meaning;
:func:`problem` says whether a record keeps to their types (readers skip and count one that does not).

The pseudonymous client id is ``HMAC-SHA256(hash key, SHA-256(API key))`` (RFC 2104), its first
:data:`CLIENT_ID_HEX` hex digits: stable across replicas and restarts while the hash key (a Secret mounted
as a file) stays the same, not reversible without it, and unrelated to the ``sha256:`` digests a tier's key
Secret may hold. Without a hash key, or when the request presented no key, ``client`` is ``null``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import Field

from llmroute.spec.base import Model, SecretKeyRef
from llmroute.spec.times import rfc3339_ms

VERSION: Final = 1
CLIENT_ID_HEX: Final = 16

FIELDS: Final[dict[str, str]] = {
    "v": "format version (1)",
    "time": "when the answer ended, RFC 3339 UTC with milliseconds (2025-03-02T16:00:00.123Z)",
    "request_id": "the request id the client was answered with (x-request-id)",
    "route": "namespace/name of the LLMRoute",
    "tier": "the caller's tier ('none' on a route without tiers or before the caller was identified)",
    "client": "pseudonymous client id (16 hex digits of a keyed hash), null when not known",
    "endpoint": "the API path, e.g. /v1/chat/completions",
    "model": "the request's model parameter, null when the body was not read",
    "stream": "true when the client asked for a stream",
    "status": "HTTP status the client got (499: the client left first)",
    "error_type": "null on success, else the OpenAI error code or type of the answer",
    "input_tokens": "prompt tokens as accounted: the upstream's usage (a stream without usage: the "
    "proxy's estimate), null when no upstream answered",
    "output_tokens": "completion tokens as accounted: the upstream's usage (a stream without usage: the "
    "events streamed), null when no upstream answered",
    "request_bytes": "size of the request body in bytes as the client sent it, null when not read",
    "latency_ms": "milliseconds from the request's arrival to the end of the answer",
    "ttfb_ms": "milliseconds to the first byte of the answer, null when none was sent",
    "cache": "hit, miss or bypass (not cacheable)",
    "upstream": "the last upstream tried ('none' when none was)",
    "retries": "attempts beyond the first (failover or retry to another upstream)",
    "sample_rate": "the sampling rate in force (each line stands for 1/sample_rate requests)",
}


MAX_COUNT: Final = 2**53  # token counts at or above this are not counts (floats lose units)
MIN_SAMPLE_RATE: Final = 1e-12  # a line standing for more requests than this would overflow the sums
_TEXT = ("tier", "client", "endpoint", "model", "cache", "route", "upstream")
_COUNTS = ("input_tokens", "output_tokens")
_MILLISECONDS = ("latency_ms", "ttfb_ms")


def canonical_time(value: Any) -> str | None:
    """``value`` as the contract's time (``YYYY-MM-DDTHH:MM:SS.mmmZ``, which sorts as a string), from any
    RFC 3339 time with a UTC offset; ``None`` when it is not one (no offset included: its zone is unknown).
    """
    if value.__class__ is not str:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    try:
        return rfc3339_ms(when)
    except OverflowError:  # an offset that takes it past year 1 or 9999
        return None


BAD_VERSION: Final = "v: not a format version (a whole number from 1)"
BAD_TIME: Final = "time: not an RFC 3339 time with a UTC offset"


def time_problem(record: dict[str, Any]) -> str | None:
    """``None`` when ``record``'s ``time`` is the canonical form or was rewritten to it in place
    (:func:`canonical_time`), else :data:`BAD_TIME`."""
    t = record.get("time")
    if (
        t.__class__ is str
        and len(t) == 24
        and t[23] == "Z"
        and t[19] == "."
        and t[10] == "T"
        and (t[:4] + t[5:7] + t[8:10] + t[11:13] + t[14:16] + t[17:19] + t[20:23]).isdigit()
        and t.isascii()
        and t[17] < "6"  # no leap second: a time in UTC reads as one (canonical_time refuses :60)
    ):
        return None
    t = canonical_time(t)
    if t is None:
        return BAD_TIME
    record["time"] = t
    return None


def problem(record: dict[str, Any]) -> str | None:
    """``None`` when every field of ``record`` present and not ``null`` has the type :data:`FIELDS` gives
    it, else ``"<field>: <what it must be>"`` for the first one that has not. A ``time`` with another
    offset or precision is rewritten in place to the canonical form (:func:`canonical_time`)."""
    v = record.get("v")
    if v.__class__ is not int or v < 1:
        return BAD_VERSION
    if (said := time_problem(record)) is not None:
        return said
    get = record.get
    for name in _TEXT:
        x = get(name)
        if x is not None and x.__class__ is not str:
            return f"{name}: not a string"
    for name in _COUNTS:
        x = get(name)
        if x is not None and (x.__class__ is not int or not 0 <= x < MAX_COUNT):
            return f"{name}: not a whole number from 0 to 2^53"
    x = get("status")
    if x is not None and (x.__class__ is not int or not 100 <= x <= 599):
        return "status: not an HTTP status (100-599)"
    x = get("stream")
    if x is not None and x.__class__ is not bool:
        return "stream: not true or false"
    for name in _MILLISECONDS:
        x = get(name)
        if x is not None and (x.__class__ not in (int, float) or not 0 <= x < 1e15):
            return f"{name}: not a number of milliseconds from 0"
    x = get("sample_rate")
    if x is not None and (x.__class__ not in (int, float) or not MIN_SAMPLE_RATE <= x <= 1):
        return "sample_rate: not a number from 1e-12 up to 1"
    return None


class AccessLogSpec(Model):
    """The proxies' access log: one JSON line per request on stdout (format version :data:`VERSION`)."""

    enabled: bool = Field(
        False,
        description="Write one JSON line per request on the proxies' stdout: time, route, tier, "
        "pseudonymous client id, endpoint, model, status, tokens, latency, cache, upstream; never a key, "
        "a prompt or a completion.",
    )
    sample_rate: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of requests logged, above 0 up to 1; each line records the rate so readers "
        "can scale counts back up.",
    )
    hash_key_secret_ref: SecretKeyRef | None = Field(
        None,
        description="Secret key holding the HMAC key of the pseudonymous client ids (the same key on "
        "every replica keeps ids stable; rotating it starts new ids). Unset: client ids are null.",
    )
