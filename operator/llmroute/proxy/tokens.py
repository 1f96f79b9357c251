"""Token accounting: a cheap estimate on admission, the real figure from the upstream's ``usage``.

The estimate is deliberately simple and slightly high — a quarter of the bytes of the body sent upstream
for the prompt plus the larger of ``max_completion_tokens`` and ``max_tokens`` (else :data:`DEFAULT_OUTPUT`)
times ``n`` — and is corrected when the request settles. It is bounded by :data:`MAX_ESTIMATE`: a client
may send any ``max_tokens`` up to 2**64, and a charge of that size (as seconds of limiter debt, a float)
could not be corrected exactly — the settle step would leave the tier minutes in debt.

llmroute asks the upstream for usage on every stream (``stream_options.include_usage``, as Envoy AI
Gateway does); :class:`StreamScan` reads it from the stream as it passes and, when the client did not
ask for it, takes the extra usage-only event out of the client's stream. A stream that ends without
usage (cut off, client gone) counts one output token per content event it relayed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from llmroute.proxy.params import Params

DEFAULT_OUTPUT = 256
MAX_ESTIMATE = 2**27  # tokens: above any model's context window; small enough to correct exactly


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one request: ``input`` (prompt) and ``output`` (completion)."""

    input: int
    output: int

    @property
    def total(self) -> int:
        return self.input + self.output


NO_USAGE = Usage(0, 0)
# an SSE line ends with CRLF, LF or a lone CR (the event-stream grammar, WHATWG HTML 9.2.5); captured, so
# that split() keeps the ends between the lines
SSE_LINE_END = re.compile(rb"(\r\n|\r|\n)")


def sse_whole_lines(data: bytes) -> int:
    """How many leading bytes of ``data`` are whole SSE lines, their ends included. A CR that ends
    ``data`` is not counted: the LF of a CRLF may come in the next chunk."""
    last_lf = data.rfind(b"\n")
    if b"\r" not in data:
        return last_lf + 1
    return max(last_lf, data.rfind(b"\r", 0, len(data) - 1)) + 1


def sse_lines(whole: bytes) -> list[bytes]:
    """The lines of ``whole`` (whole lines, see :func:`sse_whole_lines`) without their ends."""
    if b"\r" not in whole:
        return whole.split(b"\n")[:-1]
    return SSE_LINE_END.split(whole)[:-1:2]


def prompt_estimate(body_len: int) -> int:
    """Prompt tokens guessed from the body's size in bytes (about four bytes a token)."""
    return body_len // 4 + 1


def estimate(path: str, body_len: int, params: Params) -> int:
    """Tokens to charge on admission: the prompt estimate plus the most output the request allows, at
    most :data:`MAX_ESTIMATE`."""
    prompt = prompt_estimate(body_len)
    if path.endswith("/embeddings"):
        return min(prompt, MAX_ESTIMATE)
    out = params.max_output if params.max_output is not None else DEFAULT_OUTPUT
    return min(prompt + out * params.n, MAX_ESTIMATE)


def ask_for_usage(payload: dict[str, Any], params: Params) -> tuple[dict[str, Any], bool]:
    """The payload to send upstream so that a stream reports its usage, and whether the client's stream
    must then be stripped of the usage event it did not ask for. Only streams are changed."""
    if not params.stream or params.include_usage:
        return payload, False
    options = payload.get("stream_options") or {}
    return {**payload, "stream_options": {**options, "include_usage": True}}, True


def from_obj(usage: Any) -> Usage | None:
    """An OpenAI ``usage`` object as :class:`Usage`, or ``None`` if it is not one."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens", 0)
    if type(prompt) is not int or type(completion) is not int or prompt < 0 or completion < 0:
        return None
    return Usage(prompt, completion)


def from_body(body: bytes) -> Usage | None:
    if b'"usage"' not in body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return from_obj(data.get("usage")) if isinstance(data, dict) else None


def _usage_event(payload: bytes) -> tuple[Usage | None, bool]:
    """(usage carried by an SSE ``data`` payload, whether the event is the usage-only one: no choices)."""
    at = payload.find(b'"usage"')
    if at < 0 or payload[at + 7 :].lstrip(b" \t:").startswith(b"null"):
        return None, False
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None, False
    if not isinstance(obj, dict):
        return None, False
    usage = from_obj(obj.get("usage"))
    return usage, usage is not None and obj.get("choices") == []


class StreamScan:
    """Follows an SSE stream as it passes: counts events, spots ``[DONE]`` and the ``usage`` object.

    What :meth:`feed` returns always ends at a line's end: a partial last line is held back until it is
    complete, so that an upstream that breaks off mid-line leaves the client no half line for llmroute's
    error event to be glued onto (:meth:`break_off`). With ``strip_usage`` the usage-only event
    (``"choices": []`` and a ``usage``) is taken out of what :meth:`feed` returns."""

    __slots__ = ("_open", "_partial", "_skip_blank", "done", "events", "pending", "strip_usage", "usage")

    def __init__(self, strip_usage: bool = False) -> None:
        self.strip_usage = strip_usage
        self.events = 0
        self.done = False
        self.usage: Usage | None = None
        self._partial: list[bytes] = []  # the line held back, in the pieces it came in (joined once whole)
        self.pending = 0  # its length in bytes
        self._skip_blank = False
        self._open = False  # the client has lines of an event not yet ended by a blank line

    @property
    def output(self) -> int:
        """Output tokens counted from the events relayed so far: one per event but one (OpenAI's first
        event carries only the role, its last only the finish reason)."""
        return max(0, self.events - 1)

    def feed(self, chunk: bytes) -> bytes:
        """Take in ``chunk``; return the bytes to send the client (whole lines only)."""
        held = self._partial
        if held and b"\n" not in chunk and b"\r" not in chunk and not held[-1].endswith(b"\r"):
            held.append(chunk)  # still no line end: kept, not copied (an endless line costs linear time)
            self.pending += len(chunk)
            return b""
        data = b"".join((*held, chunk)) if held else chunk
        cut = sse_whole_lines(data)
        partial = data[cut:]
        self._partial, self.pending = ([partial] if partial else []), len(partial)
        if not cut:
            return b""
        lines = sse_lines(data[:cut])
        if not self.strip_usage:
            for line in lines:
                self._line(line)
            self._open = bool(lines[-1].strip())
            return data[:cut]
        kept: list[bytes] = []
        dropped = False
        for line in lines:
            if self._skip_blank and not line.strip():
                self._skip_blank = False  # the blank line that ended a dropped event goes with it
                dropped = True
                continue
            self._skip_blank = False
            if self._line(line):
                self._skip_blank = dropped = True
                continue
            kept.append(line)
        if kept:
            self._open = bool(kept[-1].strip())
        if not dropped:
            return data[:cut]
        return b"".join(line + b"\n" for line in kept)

    def _line(self, line: bytes) -> bool:
        """Account for one line; whether it is the usage-only event's ``data`` line."""
        if not line.startswith(b"data:"):
            return False
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return False
        usage, usage_only = _usage_event(payload)
        if usage is not None:
            self.usage = usage
        if usage_only:
            return True
        self.events += 1
        return False

    def rest(self) -> bytes:
        """At the end of the stream: account for a last line without its newline; the bytes still to send
        (none when that line is the usage-only event being stripped)."""
        rest, self._partial, self.pending = b"".join(self._partial), [], 0
        if not rest:
            return b""
        usage_only = self._line(rest)
        return b"" if self.strip_usage and usage_only else rest

    def break_off(self) -> bytes:
        """When the upstream failed: drop the partial line held back and return what ends the event the
        client is in the middle of, so that an event appended next is read as an event of its own."""
        self._partial, self.pending = [], 0
        return b"\n" if self._open else b""
