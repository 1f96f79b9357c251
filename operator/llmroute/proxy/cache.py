"""Exact-match response cache for requests that are safe to reuse.

Who: only callers llmroute verified itself (an API key found in a tier's key list) use the cache at all —
the upstream might refuse anybody else, and the cache must never answer what it would have refused. An
entry is *scoped*: by default it answers only the client that stored it (``scope: Client``); a route may
share entries within a tier (``Tier``) or across the whole route (``Route``), at a privacy cost: a hit
then tells a client that someone else sent the very same request.

What: non-streaming requests that are deterministic — embeddings always, completions with an explicit
``temperature: 0`` — or that opt in with ``x-llmroute-cache: on``. ``x-llmroute-cache: off`` and
``Cache-Control: no-cache`` skip the lookup (the fresh answer still refreshes the entry);
``Cache-Control: no-store`` skips the cache entirely. Only complete, well-formed success objects are
stored (:func:`storable`), whatever the HTTP status said; never errors, streams or partial answers.

The key is the sha256 of the scope, the path and the canonical JSON body (key order does not matter).
Entries expire after the TTL; the total size is bounded in bytes with least-recently-used eviction. A
reloaded config applies to the entries already held as if it had been in force when they were stored: a
shorter TTL expires them sooner, a smaller entry bound drops those above it, a smaller total evicts.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
from multidict import CIMultiDictProxy

from llmroute.proxy.identity import Caller
from llmroute.proxy.params import Params
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
    stored: float  # when it was stored: it expires ``ttl_seconds`` later, by the TTL in force when read
    size: int


def mode(cfg: CacheConfig, path: str, params: Params, caller: Caller, headers: CIMultiDictProxy[str]) -> Mode:
    """How the request uses the cache (see the module docstring)."""
    if not cfg.enabled or cfg.max_bytes <= 0 or params.stream or not caller.verified:
        return Mode.OFF
    control = headers.get("Cache-Control", "").lower()
    if "no-store" in control:
        return Mode.OFF
    opt = headers.get(HEADER, "").lower()
    if opt in ("off", "false", "0"):
        return Mode.OFF
    deterministic = path.endswith("/embeddings") or params.temperature == 0
    if not deterministic and opt not in ("on", "true", "1"):
        return Mode.OFF
    return Mode.REFRESH if "no-cache" in control else Mode.USE


def scope(cfg: CacheConfig, caller: Caller) -> bytes:
    """Who an entry stored for ``caller`` may answer, as key material."""
    if cfg.scope == "Route":
        return b"r"
    tier = caller.tier_label.encode()
    if cfg.scope == "Tier":
        return b"t" + tier
    return b"c" + tier + b"\0" + (caller.client or b"")


def cache_key(scope_of: bytes, path: str, payload: dict[str, Any]) -> bytes:
    """The entry's key: sha256 of the scope, the path and the canonical JSON body."""
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(scope_of + b"\0" + path.encode() + b"\0" + canonical).digest()


SUCCESS_OBJECTS = {
    "/v1/chat/completions": "chat.completion",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "list",
}
COMPLETE = frozenset({"stop", "length", "tool_calls", "function_call"})


def storable(path: str, body: bytes, content_type: str) -> bool:
    """Whether ``body`` is a complete, well-formed success object for ``path``: JSON of the right
    ``object`` type, no ``error``, every choice finished (embeddings: every item an embedding)."""
    if not content_type.startswith("application/json"):
        return False
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(obj, dict) or "error" in obj or obj.get("object") != SUCCESS_OBJECTS.get(path):
        return False
    if path.endswith("/embeddings"):
        data = obj.get("data")
        return isinstance(data, list) and bool(data) and all(_embedding(d) for d in data)
    choices = obj.get("choices")
    return isinstance(choices, list) and bool(choices) and all(_finished(c) for c in choices)


def _finished(choice: Any) -> bool:
    return isinstance(choice, dict) and choice.get("finish_reason") in COMPLETE


def _embedding(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("embedding"), list | str)


class ResponseCache:
    def __init__(self, cfg: CacheConfig) -> None:
        self.cfg = cfg
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self.bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def configure(self, cfg: CacheConfig) -> None:
        """Follow a reloaded config: disabled clears, a smaller ``max_entry_bytes`` drops the entries above
        it, a smaller ``max_bytes`` evicts the least recently used; a TTL applies when entries are read."""
        previous, self.cfg = self.cfg, cfg
        if not cfg.enabled:
            self.clear()
        if cfg.max_entry_bytes < previous.max_entry_bytes:
            for key in [k for k, e in self._entries.items() if len(e.body) > cfg.max_entry_bytes]:
                self._drop(key)
        self._shrink(cfg.max_bytes)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def get(self, key: bytes, now: float) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now - entry.stored >= self.cfg.ttl_seconds:
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
        self._entries[key] = Entry(body, content_type, now, size)
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
