"""Exact-match response cache for requests that are safe to reuse.

Cacheable: non-streaming requests that are deterministic — embeddings always, completions with an explicit
``temperature: 0`` — or that opt in with ``x-llmroute-cache: on``. ``x-llmroute-cache: off`` and
``Cache-Control: no-cache`` skip the lookup (the fresh answer still refreshes the entry);
``Cache-Control: no-store`` skips the cache entirely. Only 200 responses are stored, never errors.

The key is the sha256 of the path and the canonical JSON body (key order does not matter). Entries expire
after the TTL; the total size is bounded in bytes with least-recently-used eviction.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
from multidict import CIMultiDictProxy

from llmroute.spec.proxyconfig import CacheConfig

ENTRY_OVERHEAD = 200  # dict slot, key, entry object: a rough but honest per-entry cost in bytes
HEADER = "x-llmroute-cache"


class Mode(Enum):
    OFF = "bypass"  # neither read nor write
    REFRESH = "miss"  # do not read, but store the fresh answer
    USE = "use"  # read, and store on a miss


@dataclass(frozen=True, slots=True)
class Entry:
    body: bytes
    content_type: str
    expires: float
    size: int


def mode(cfg: CacheConfig, path: str, payload: dict[str, Any], headers: CIMultiDictProxy[str]) -> Mode:
    if not cfg.enabled or cfg.max_bytes <= 0 or payload.get("stream") is True:
        return Mode.OFF
    control = headers.get("Cache-Control", "").lower()
    if "no-store" in control:
        return Mode.OFF
    opt = headers.get(HEADER, "").lower()
    if opt in ("off", "false", "0"):
        return Mode.OFF
    deterministic = path.endswith("/embeddings") or payload.get("temperature") == 0
    if not deterministic and opt not in ("on", "true", "1"):
        return Mode.OFF
    return Mode.REFRESH if "no-cache" in control else Mode.USE


def cache_key(path: str, payload: dict[str, Any]) -> bytes:
    return hashlib.sha256(path.encode() + b"\0" + orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).digest()


class ResponseCache:
    def __init__(self, cfg: CacheConfig) -> None:
        self.cfg = cfg
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def configure(self, cfg: CacheConfig) -> None:
        self.cfg = cfg
        if not cfg.enabled:
            self.clear()
        self._shrink(cfg.max_bytes)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def get(self, key: bytes, now: float) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: bytes, body: bytes, content_type: str, now: float) -> bool:
        size = len(body) + len(key) + ENTRY_OVERHEAD
        if len(body) > self.cfg.max_entry_bytes or size > self.cfg.max_bytes:
            return False
        if key in self._entries:
            self._drop(key)
        self._shrink(self.cfg.max_bytes - size)
        self._entries[key] = Entry(body, content_type, now + self.cfg.ttl_seconds, size)
        self.bytes += size
        return True

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key)
        self.bytes -= entry.size

    def _shrink(self, budget: int) -> None:
        while self._entries and self.bytes > budget:
            _, entry = self._entries.popitem(last=False)
            self.bytes -= entry.size
            self.evictions += 1
