"""The fake upstream's hosted mode: a request and token quota with the providers' rate-limit headers.

:class:`HostedQuota` is two token buckets (requests and tokens) of ``limit`` each, refilled at ``limit`` per
``window_seconds``. A request is charged when it arrives (one request, and its prompt plus the tokens it
may generate); when a bucket cannot cover it the answer is 429 with ``Retry-After``. Every answer carries
the headers in one of two shapes:

- ``openai``: ``x-ratelimit-limit-*``, ``x-ratelimit-remaining-*`` and ``x-ratelimit-reset-*`` for both
  requests and tokens, resets as Go durations (``6m0s``, ``1s``, ``20ms``); a 429 adds ``Retry-After``
  in whole seconds;
- ``azure``: ``x-ratelimit-remaining-requests`` without a limit or reset, and the tokens' limit,
  remaining and reset in plain seconds; a 429 adds ``retry-after-ms`` and ``retry-after``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal

from llmroute.core.gcra import fmt_duration

HeaderStyle = Literal["openai", "azure"]


def go_duration(seconds: float) -> str:
    """``seconds`` as Go's ``time.Duration.String`` writes it (``6m0s``, ``1.5s``, ``20ms``, ``0s``)."""
    return fmt_duration(seconds)


class _QuotaBucket:
    def __init__(self, limit: float, window: float, now: float) -> None:
        self.limit = limit
        self.rate = limit / window
        self.level = limit
        self.at = now

    def refill(self, now: float) -> None:
        self.level = min(self.limit, self.level + (now - self.at) * self.rate)
        self.at = now

    def wait(self, cost: float) -> float:
        """Seconds until the bucket holds ``cost``."""
        return max(0.0, (min(cost, self.limit) - self.level) / self.rate)

    def reset(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.limit - self.level) / self.rate


class HostedQuota:
    """Requests and tokens per ``window_seconds``; :meth:`charge` answers whether a request may pass and
    with which headers. ``clock`` is monotonic seconds."""

    def __init__(
        self,
        requests: int,
        tokens: int,
        window_seconds: float = 60.0,
        style: HeaderStyle = "openai",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        now = clock()
        self.requests = _QuotaBucket(requests, window_seconds, now)
        self.tokens = _QuotaBucket(tokens, window_seconds, now)
        self.style = style
        self.clock = clock
        self.refused = 0

    def charge(self, tokens: float) -> tuple[bool, dict[str, str]]:
        """Charge one request of ``tokens`` tokens: (admitted, the answer's headers)."""
        now = self.clock()
        self.requests.refill(now)
        self.tokens.refill(now)
        wait = max(self.requests.wait(1), self.tokens.wait(tokens))
        admitted = wait <= 0
        if admitted:
            self.requests.level -= 1
            self.tokens.level -= tokens
        else:
            self.refused += 1
        headers = self._headers()
        if not admitted:
            if self.style == "azure":
                headers["retry-after-ms"] = str(math.ceil(wait * 1000))
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return admitted, headers

    def _headers(self) -> dict[str, str]:
        req, tok = self.requests, self.tokens
        remaining_requests = str(max(0, math.floor(req.level)))
        remaining_tokens = str(max(0, math.floor(tok.level)))
        if self.style == "azure":
            return {
                "x-ratelimit-remaining-requests": remaining_requests,
                "x-ratelimit-limit-tokens": str(int(tok.limit)),
                "x-ratelimit-remaining-tokens": remaining_tokens,
                "x-ratelimit-reset-tokens": str(math.ceil(tok.reset())),
            }
        return {
            "x-ratelimit-limit-requests": str(int(req.limit)),
            "x-ratelimit-limit-tokens": str(int(tok.limit)),
            "x-ratelimit-remaining-requests": remaining_requests,
            "x-ratelimit-remaining-tokens": remaining_tokens,
            "x-ratelimit-reset-requests": go_duration(req.reset()),
            "x-ratelimit-reset-tokens": go_duration(tok.reset()),
        }
