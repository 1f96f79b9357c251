"""Token accounting: a cheap estimate on admission, the real figure from the response's ``usage``.

The estimate is deliberately simple and slightly high — a quarter of the request body's bytes for the
prompt plus ``max_tokens`` (or ``max_completion_tokens``, else :data:`DEFAULT_OUTPUT`) times ``n`` — and is
corrected as soon as the response says what was used. Streams report usage only when the client asked
for it (``stream_options.include_usage``); otherwise each SSE event counts as one output token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

DEFAULT_OUTPUT = 256


@dataclass(frozen=True, slots=True)
class Usage:
    input: int
    output: int

    @property
    def total(self) -> int:
        return self.input + self.output


def estimate(path: str, body_len: int, payload: dict[str, Any]) -> int:
    prompt = body_len // 4 + 1
    if path.endswith("/embeddings"):
        return prompt
    out = payload.get("max_completion_tokens") or payload.get("max_tokens") or DEFAULT_OUTPUT
    n = payload.get("n") or 1
    if not isinstance(out, int) or not isinstance(n, int):
        return prompt + DEFAULT_OUTPUT
    return prompt + max(0, out) * max(1, min(n, 128))


def from_obj(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens", 0)
    if not isinstance(prompt, int) or not isinstance(completion, int):
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


class StreamScan:
    """Follows an SSE stream as it passes: counts events, spots ``[DONE]`` and a ``usage`` object."""

    __slots__ = ("_partial", "done", "events", "usage")

    def __init__(self) -> None:
        self.events = 0
        self.done = False
        self.usage: Usage | None = None
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        data = self._partial + chunk if self._partial else chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                self.done = True
                continue
            self.events += 1
            if b'"usage"' in payload:
                try:
                    usage = from_obj(orjson.loads(payload).get("usage"))
                except (orjson.JSONDecodeError, AttributeError):
                    usage = None
                if usage is not None:
                    self.usage = usage

    def result(self, prompt_estimate: int) -> Usage:
        if self.usage is not None:
            return self.usage
        return Usage(prompt_estimate, max(0, self.events - 1))
