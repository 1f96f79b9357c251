"""Map a request to its :class:`Caller` (tier and client identity), exactly as the route's ``limits`` say.

* ``Unauthenticated`` (the route says so explicitly): no authentication; callers belong to
  ``default_tier`` if the route has tiers, else to none (no limits).
* ``ApiKey``: ``Authorization: Bearer <key>`` or ``api-key: <key>`` is hashed (sha256) and looked up in the
  tier key lists. No key → ``default_tier`` if set, else 401. Unknown key → 401.
* ``Header``: the header named ``limits.header`` names a tier; missing or unknown → ``default_tier`` if
  set, else 401.

The client identity (for per-client limits) is the sha256 digest of the presented key's bytes as sent (a
key that is not UTF-8 included); raw keys are never kept. A caller is *verified* only when llmroute itself
matched its key against a tier's key list: only verified callers are ever answered from the cache (the
upstream might refuse anybody else).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from multidict import CIMultiDictProxy

from llmroute.proxy.snapshot import ConfigSnapshot
from llmroute.spec.proxyconfig import TierConfig


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: its tier (``None`` on a route without tiers), the sha256 of its key, and
    whether llmroute verified that key."""

    tier: TierConfig | None
    client: bytes | None
    verified: bool = False

    @property
    def tier_label(self) -> str:
        return self.tier.name if self.tier is not None else "none"

    @property
    def priority(self) -> int:
        return self.tier.priority if self.tier is not None else 0


PASS_THROUGH = Caller(None, None)


class Unauthorized(Exception):
    """Raised with an OpenAI-style message when the request maps to no tier."""


def presented_key(headers: CIMultiDictProxy[str]) -> str | None:
    auth = headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("api-key")
    return key.strip() if key and key.strip() else None


def resolve(snap: ConfigSnapshot, headers: CIMultiDictProxy[str]) -> Caller:
    limits = snap.config.limits
    if not limits.tiers:
        return PASS_THROUGH
    key = presented_key(headers)
    # the bytes as sent: aiohttp reads a header's bytes that are not UTF-8 as lone surrogates, which
    # a plain encode() refuses (a 500 for a key nobody could hold); such a key matches no key list
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest() if key is not None else None
    default = snap.tiers.get(limits.default_tier) if limits.default_tier else None
    if limits.identity == "Unauthenticated":
        return Caller(default, digest)
    if limits.identity == "Header":
        tier = snap.tiers.get(headers.get(limits.header, ""))
        if tier is None:
            if default is None:
                raise Unauthorized(f"missing or unknown tier in header {limits.header}")
            tier = default
        return Caller(tier, digest)
    if digest is None:
        if default is None:
            raise Unauthorized(
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        return Caller(default, None)
    name = snap.tier_by_key.get(digest)
    if name is None:
        raise Unauthorized("Incorrect API key provided.")
    return Caller(snap.tiers[name], digest, True)
