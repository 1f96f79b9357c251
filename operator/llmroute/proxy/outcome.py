"""How one request ended: :class:`Progress` (filled in as the request goes) and :class:`Outcome` (the
immutable record its settle step makes of it, for the metrics, the limits and an access log).

Whatever the ending — completed, client gone, timed out, upstream error, stream cut, refused or shed by
llmroute — :func:`consumed` says what the request actually used, and the settle step charges exactly
that: the usage the upstream reported; else, for a stream, the prompt estimate plus one output token per
event relayed; for an answer without usage, the prompt estimate plus a quarter of the answer's bytes;
else the prompt estimate for a request an upstream received but never answered (timed out, connection
broken, client gone); else nothing (an upstream's error status, work never sent, a cache hit).
:func:`refunds_request` says when the request itself does not count against the caller's
requests-per-minute: llmroute ended it before any upstream received it (shed, no upstream available,
client gone while queued, internal error), unless the cache answered it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from llmroute.proxy.limits import Verdict
from llmroute.proxy.tokens import NO_USAGE, StreamScan, Usage

UsageSource = Literal["reported", "counted", "estimated", "none"]
REPORTED: UsageSource = "reported"


class Progress:
    """What the request path learns about one request, step by step (mutable; one per request).

    ``upstream`` is the last upstream tried (``"none"`` before any), ``attempts`` how many were tried,
    ``delivered`` whether one received the request, ``answer_status`` and ``answer_bytes`` the status and
    size of the (non-streaming) upstream answer relayed; ``charged`` the tokens charged on admission by
    ``verdict``; ``client`` the sha256 of the caller's key, ``path``, ``model`` and ``request_bytes`` what
    was asked (for the access log); times are ``perf_counter()``."""

    __slots__ = (
        "answer_bytes",
        "answer_status",
        "attempts",
        "cache",
        "charged",
        "client",
        "delivered",
        "error",
        "first_byte_at",
        "model",
        "path",
        "prompt_estimate",
        "request_bytes",
        "request_id",
        "scan",
        "started",
        "status",
        "stream",
        "tier",
        "upstream",
        "usage",
        "verdict",
    )

    def __init__(self, request_id: str, started: float, path: str) -> None:
        self.request_id = request_id
        self.started = started
        self.path = path
        self.client: bytes | None = None
        self.model: str | None = None
        self.request_bytes: int | None = None
        self.tier = "none"
        self.cache = "bypass"
        self.stream = False
        self.verdict: Verdict | None = None
        self.charged = 0
        self.prompt_estimate = 0
        self.upstream = "none"
        self.attempts = 0
        self.delivered = False
        self.answer_status: int | None = None
        self.answer_bytes = 0
        self.first_byte_at: float | None = None
        self.usage: Usage | None = None
        self.scan: StreamScan | None = None
        self.status = 0  # the status to record when it differs from the response's (a stream cut off)
        self.error: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's ending. ``status`` is what the client got (499: it left first); ``error`` the OpenAI
    error code of a failed ending (``None`` on success); ``upstream`` the last upstream tried
    (``"none"``: no upstream was tried) and ``attempts`` how many were; ``cache`` ``hit``, ``miss`` or
    ``bypass``; tokens as charged (``usage_source`` says where they came from); ``duration`` and
    ``ttfb`` in seconds."""

    request_id: str
    route: str
    tier: str
    status: int
    error: str | None
    upstream: str
    attempts: int
    cache: str
    stream: bool
    tokens_in: int
    tokens_out: int
    usage_source: UsageSource
    duration: float
    ttfb: float

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)


def consumed(p: Progress) -> tuple[Usage, UsageSource]:
    """What the request used (see the module docstring) and where that figure comes from."""
    if p.usage is not None:
        return p.usage, REPORTED
    scan = p.scan
    if scan is not None and (scan.events or scan.done):
        return Usage(p.prompt_estimate, scan.output), "counted"
    status = p.answer_status
    if status is not None:
        if status < 400:  # an answer without usage: its size tells (about four bytes a token)
            return Usage(p.prompt_estimate, p.answer_bytes // 4), "estimated"
        return NO_USAGE, "none"
    if p.delivered:
        return Usage(p.prompt_estimate, 0), "estimated"
    return NO_USAGE, "none"


def refunds_request(p: Progress) -> bool:
    """Whether the admitted request is given back to the caller's requests-per-minute."""
    return not p.delivered and p.cache != "hit"
