"""The access log's writer: one JSON line per answered request (format: :mod:`llmroute.spec.accesslog`).

The request path only appends a tuple of the request's figures (:data:`ENTRY`) to a deque: a writer thread
wakes every ``flush_seconds``, turns what has accumulated into lines in one batch (the time in RFC 3339, the
keyed client id, orjson) and writes them to the file descriptor (stdout by default) with blocking writes
of its own, so a slow or stalled log pipe never stalls the event loop, and formatting a few hundred lines
at once costs less than one at a time on the request path (measured: ``bench.access_log_cost``). At most
``max_pending_lines`` wait: beyond that new lines are dropped and counted (:attr:`AccessLogWriter.dropped`,
exported as ``llmroute_proxy_access_log_dropped_total``) rather than growing memory.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from llmroute.spec.accesslog import CLIENT_ID_HEX, VERSION

_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text


def utc_time(unix: float) -> str:
    """``unix`` seconds as RFC 3339 UTC with milliseconds (``2025-03-02T16:00:00.123Z``)."""
    seconds = int(unix)
    if seconds != _second[0]:
        _second[0], _second[1] = seconds, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
    millis = int((unix - seconds) * 1000)
    return f"{_second[1]}{millis:03d}Z"


# the figures of one request, in this order, as the request path queues them (see AccessLogWriter.write)
ENTRY = (
    "unix time",
    "request id (the client's x-request-id or the proxy's)",
    "route",
    "tier",
    "sha256 of the client key or None",
    "endpoint",
    "model",
    "stream",
    "status",
    "error code (None on success)",
    "input_tokens",
    "output_tokens",
    "request_bytes",
    "latency seconds",
    "ttfb seconds or None",
    "cache",
    "upstream",
    "retries",
)


class AccessLogWriter:
    """Writes access-log lines to ``fd`` from a thread of its own; off until :meth:`configure` enables it.

    ``sample_rate`` (0-1] is the share of requests logged (drawn from ``rng``); ``hash_key`` keys the
    pseudonymous client ids (``None``: ids are ``null``).
    """

    def __init__(
        self,
        fd: int = 1,
        flush_seconds: float = 0.05,
        max_pending_lines: int = 100_000,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.fd = fd
        self.flush_seconds = flush_seconds
        self.max_pending_lines = max_pending_lines
        self.enabled = False
        self.sample_rate = 1.0
        self.written = 0
        self._full = 0  # counted by the event loop
        self._lost = 0  # counted by the writer thread
        self._hash_key: bytes | None = None
        self._ids: dict[bytes, str] = {}
        self._pending: collections.deque[tuple[Any, ...]] = collections.deque()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._random = rng

    def configure(self, enabled: bool, sample_rate: float = 1.0, hash_key: bytes | None = None) -> None:
        """Apply a config's ``accessLog`` settings (a new hash key forgets the ids computed so far)."""
        if hash_key != self._hash_key:
            self._ids = {}
        self.enabled, self.sample_rate, self._hash_key = enabled, sample_rate, hash_key
        if enabled and self._thread is None:
            self._stop = False
            self._wake.clear()
            self._thread = threading.Thread(target=self._run, name="llmroute-access-log", daemon=True)
            self._thread.start()

    @property
    def dropped(self) -> int:
        """Lines lost: refused while too many were pending, or failed to write."""
        return self._full + self._lost

    def sampled(self) -> bool:
        """Whether to log the request now ending (``False`` when off)."""
        return self.enabled and (self.sample_rate >= 1.0 or self._random() < self.sample_rate)

    def client_id(self, digest: bytes | None) -> str | None:
        """The pseudonymous id of the client whose key has sha256 ``digest`` (``None`` without either)."""
        if digest is None or self._hash_key is None:
            return None
        found = self._ids.get(digest)
        if found is None:
            if len(self._ids) >= 100_000:
                self._ids = {}
            found = self._ids[digest] = hmac.digest(self._hash_key, digest, hashlib.sha256).hex()[
                :CLIENT_ID_HEX
            ]
        return found

    def write(self, entry: tuple[Any, ...]) -> None:
        """Queue one request's figures, in the order of :data:`ENTRY` (the sample rate in force is added)."""
        if len(self._pending) >= self.max_pending_lines:
            self._full += 1
            return
        self._pending.append((*entry, self.sample_rate))

    def line(self, entry: tuple[Any, ...]) -> bytes:
        """The JSON line of a queued entry (``ENTRY`` and the sample rate)."""
        (when, rid, route, tier, digest, endpoint, model, stream, status, error, tin, tout, size, latency,
         ttfb, cache, upstream, retries, rate) = entry  # fmt: skip
        record = {
            "v": VERSION,
            "time": utc_time(when),
            "request_id": rid,
            "route": route,
            "tier": tier,
            "client": self.client_id(digest),
            "endpoint": endpoint,
            "model": model,
            "stream": stream,
            "status": status,
            "error_type": error,
            "input_tokens": tin,
            "output_tokens": tout,
            "request_bytes": size,
            "latency_ms": round(latency * 1000, 3),
            "ttfb_ms": None if ttfb is None else round(ttfb * 1000, 3),
            "cache": cache,
            "upstream": upstream,
            "retries": retries,
            "sample_rate": rate,
        }
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is pending and stop the thread (waits at most ``timeout`` seconds)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop = True
            self._wake.set()
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            stopping = self._stop
            self._drain()
            if stopping:
                return
            self._wake.wait(self.flush_seconds)

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            parts: list[bytes] = []
            size = 0
            line = self.line
            while pending and size < 1 << 20:
                text = line(pending.popleft())
                parts.append(text)
                size += len(text)
            self._write_all(b"".join(parts), len(parts))

    def _write_all(self, data: bytes, lines: int) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except BlockingIOError:  # a non-blocking descriptor that is full: wait rather than lose lines
                time.sleep(self.flush_seconds)
            except OSError:  # closed pipe or full disk: these lines are lost, the proxy goes on
                self._lost += lines
                return
        self.written += lines
