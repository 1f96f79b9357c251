"""The rendered proxy config: the contract between the operator (writer) and the proxy (reader).

The operator writes it as ``config.json`` in the route's ConfigMap; the proxy watches that ConfigMap
through the API and reads the mounted file as boot source and fallback. ``generation`` orders configs (the
operator raises it with every content change; it is not part of the content hash), so a proxy that hears
of a config twice — from the API and, a minute later, from the file — never goes back to an older one.
Limits in ``limits.tiers`` are already divided per replica; the global figures and the
divisor they came from travel alongside so a proxy using a shared store can enforce the global figure.
Secrets never appear here: only the paths (or environment variable names) where they are mounted.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field

from llmroute.spec.base import Model
from llmroute.spec.upstream import EngineType, LoadBalancing

CONFIG_KEY = "config.json"
SCHEMA_VERSION = 1


class RouteRef(Model):
    namespace: str
    name: str


class UpstreamConfig(Model):
    name: str
    url: str
    model: str
    upstream_model: str | None = None
    group: int = 0
    weight: int = 100
    active: bool = True
    api_key_file: str | None = None
    api_key_env: str | None = None
    engine: EngineType | None = None  # set: scrape ``metrics_url`` for the engine's queue and KV cache
    metrics_url: str | None = None


class TimeoutsConfig(Model):
    connect_seconds: float = 5.0
    first_byte_seconds: float = 60.0
    idle_seconds: float = 60.0  # longest silence between a stream's chunks
    total_seconds: float = 600.0


class PassiveHealthConfig(Model):
    consecutive_failures: int = 3
    eject_seconds: float = 30.0
    max_eject_seconds: float = 900.0
    retries: int = 2
    retry_on_status: list[int] = Field(default_factory=lambda: [429, 500, 502, 503, 504])
    probe_interval_seconds: float = 10.0  # idle upstreams get an active probe this often (0: never)


class AdmissionConfig(Model):
    max_concurrency: int = 256
    queue_timeout_seconds: float = 5.0


class TierConfig(Model):
    """One tier's effective limits. ``None`` means unlimited."""

    name: str
    priority: int = 0
    sheddable: bool = True
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    global_requests_per_minute: int | None = None
    global_tokens_per_minute: int | None = None
    client_requests_per_minute: int | None = None
    client_tokens_per_minute: int | None = None
    global_client_requests_per_minute: int | None = None
    global_client_tokens_per_minute: int | None = None
    api_keys_file: str | None = None


class StoreConfig(Model):
    type: Literal["Local", "Redis"] = "Local"
    url: str | None = None
    password_file: str | None = None


class LimitsConfig(Model):
    """The limits each replica enforces; ``semantics`` says in words what the figures mean across
    replicas (for people reading the rendered config)."""

    semantics: str = ""
    identity: Literal["ApiKey", "Header", "Unauthenticated"] = "ApiKey"
    header: str = "x-llmroute-tier"
    default_tier: str | None = None
    divisor: int = 1
    replicas: int = 1
    tiers: list[TierConfig] = Field(default_factory=list)
    store: StoreConfig = StoreConfig()


CacheScope = Literal["Client", "Tier", "Route"]


class CacheConfig(Model):
    """``scope``: who may be answered from an entry — the client that stored it (``Client``), any client
    of its tier (``Tier``) or any verified client of the route (``Route``)."""

    enabled: bool = True
    scope: CacheScope = "Client"
    ttl_seconds: float = 300.0
    max_bytes: int = 64 * 1024 * 1024
    max_entry_bytes: int = 1024 * 1024


class EngineMetricsConfig(Model):
    scrape_interval_seconds: float = 1.0
    scrape_timeout_seconds: float = 0.5


class AccessLogConfig(Model):
    """The access log's settings; the hash key is the mounted Secret file's path, never the key."""

    enabled: bool = False
    sample_rate: float = Field(1.0, gt=0, le=1)
    hash_key_file: str | None = None


class ProxyConfig(Model):
    version: int = SCHEMA_VERSION
    route: RouteRef
    active_group: int = 0
    load_balancing: LoadBalancing = "LeastConnections"
    upstreams: list[UpstreamConfig] = Field(min_length=1)
    engine_metrics: EngineMetricsConfig = EngineMetricsConfig()
    timeouts: TimeoutsConfig = TimeoutsConfig()
    passive_health: PassiveHealthConfig = PassiveHealthConfig()
    admission: AdmissionConfig = AdmissionConfig()
    limits: LimitsConfig = LimitsConfig()
    cache: CacheConfig = CacheConfig()
    access_log: AccessLogConfig | None = None  # None: off (and left out of older configs' hashes)
    max_body_bytes: int = 10 * 1024 * 1024
    generation: int = Field(0, ge=0)  # 0: not stamped (rendered offline, or written before generations)
    hash: str = ""

    def content_hash(self) -> str:
        """sha256 over the canonical JSON of everything but ``hash`` and ``generation`` (first 16 hex
        digits): the same decisions give the same hash whatever their generation."""
        body = self.model_dump(by_alias=True, mode="json", exclude={"hash", "generation"})
        blob = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_hash(self) -> ProxyConfig:
        return self.model_copy(update={"hash": self.content_hash()})

    def dumps(self) -> str:
        """Canonical, human-readable JSON (what goes into the ConfigMap)."""
        return json.dumps(self.with_hash().to_wire(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def loads(cls, text: str) -> ProxyConfig:
        data: Any = json.loads(text)
        return cls.model_validate(data)
