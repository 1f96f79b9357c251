"""Build the proxy config (see :mod:`llmroute.spec.proxyconfig`) from a route and the operator's decisions.

Limits arrive already decided by the rate-limit plan (``core.ratelimit``): global effective figures and
per-replica shares. Secrets are referenced by their mount paths, never copied.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from urllib.parse import urlsplit, urlunsplit

from llmroute.core.ratelimit import scaled, share
from llmroute.spec.proxyconfig import (
    AccessLogConfig,
    AdmissionConfig,
    CacheConfig,
    EngineMetricsConfig,
    LimitsConfig,
    PassiveHealthConfig,
    ProxyConfig,
    RouteRef,
    StoreConfig,
    TierConfig,
    TimeoutsConfig,
    UpstreamConfig,
)
from llmroute.spec.ratelimit import Tier
from llmroute.spec.route import LLMRoute
from llmroute.spec.status import EffectiveLimit

SECRETS_DIR = "/etc/llmroute/secrets"
CLIENT_KEYS_DIR = "/etc/llmroute/clients"
CONFIG_DIR = "/etc/llmroute/config"


LIMITS_SEMANTICS = (
    "Local store: each replica enforces requestsPerMinute/tokensPerMinute (and the per-client client* "
    "figures), which are the global figures divided by divisor, never below 1 a minute. A client spread "
    "evenly over the replicas gets its global limit; one whose requests all reach one replica (a single "
    "keep-alive connection) gets that replica's share. The replicas together admit at most "
    "max(global, divisor) a minute per limit, plus each replica's one-second burst: a global limit below "
    "divisor over-admits by up to divisor/global. The Redis store enforces the global figures exactly."
)
SHARED_SEMANTICS = (
    "Redis store: the replicas share exact counters of the global figures (global*); while the store is "
    "unreachable each replica falls back to its local share (the figures without the global prefix, "
    "divided by divisor, never below 1 a minute)."
)


def key_env_name(upstream: str) -> str:
    """Environment variable that may carry an upstream's API key when running outside Kubernetes."""
    return "LLMROUTE_API_KEY_" + re.sub(r"[^A-Z0-9]", "_", upstream.upper())


def default_metrics_url(url: str) -> str:
    """An engine's metrics endpoint when the route names none: ``/metrics`` on the scheme, host and port
    of the upstream's ``url`` (vLLM, SGLang and TGI all serve it there)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/metrics", "", ""))


def _scaled(value: int | None, factors: tuple[float, float], divisor: int = 1) -> int | None:
    """A per-client figure times ``factors``, divided per replica (never a positive figure to zero)."""
    if value is None:
        return None
    return share(scaled(value, *factors), divisor)


def _tier_config(tier: Tier, limit: EffectiveLimit | None, divisor: int) -> TierConfig:
    factors = (limit.multiplier, limit.shed_factor) if limit else (1.0, 1.0)
    client = tier.per_client
    client_rpm = client.requests_per_minute if client else None
    client_tpm = client.tokens_per_minute if client else None
    keys = tier.api_keys_secret_ref
    return TierConfig(
        name=tier.name,
        priority=tier.priority,
        sheddable=tier.sheddable,
        requests_per_minute=limit.per_replica_requests_per_minute if limit else None,
        tokens_per_minute=limit.per_replica_tokens_per_minute if limit else None,
        global_requests_per_minute=limit.requests_per_minute if limit else None,
        global_tokens_per_minute=limit.tokens_per_minute if limit else None,
        client_requests_per_minute=_scaled(client_rpm, factors, divisor),
        client_tokens_per_minute=_scaled(client_tpm, factors, divisor),
        global_client_requests_per_minute=_scaled(client_rpm, factors),
        global_client_tokens_per_minute=_scaled(client_tpm, factors),
        api_keys_file=f"{CLIENT_KEYS_DIR}/{keys.name}/{keys.key}" if keys else None,
    )


def build_proxy_config(
    route: LLMRoute,
    *,
    limits: Sequence[EffectiveLimit],
    divisor: int,
    replicas: int,
    active_group: int = 0,
    unhealthy: Collection[str] = (),
) -> ProxyConfig:
    """The config the proxies of ``route`` should run, with its content hash filled in.

    ``limits`` come from the rate-limit plan (one per tier; a tier without an entry is unlimited),
    ``divisor`` is the replica count the shares were divided by, ``active_group`` and ``unhealthy`` come
    from the failover decision.
    """
    spec = route.spec
    by_tier = {limit.tier: limit for limit in limits}
    upstreams = [
        UpstreamConfig(
            name=u.name,
            url=u.url,
            model=u.model,
            upstream_model=u.upstream_model,
            group=u.group,
            weight=u.weight,
            active=u.name not in unhealthy,
            api_key_file=(
                f"{SECRETS_DIR}/{u.api_key_secret_ref.name}/{u.api_key_secret_ref.key}"
                if u.api_key_secret_ref
                else None
            ),
            api_key_env=key_env_name(u.name) if u.api_key_secret_ref else None,
            engine=u.engine.type if u.engine else None,
            metrics_url=(u.engine.metrics_url or default_metrics_url(u.url)) if u.engine else None,
        )
        for u in spec.upstreams
    ]
    rl = spec.rate_limits
    password = rl.store.password_secret_ref
    log, hash_key = spec.access_log, spec.access_log.hash_key_secret_ref
    access_log = (
        AccessLogConfig(
            enabled=True,
            sample_rate=log.sample_rate,
            hash_key_file=f"{SECRETS_DIR}/{hash_key.name}/{hash_key.key}" if hash_key else None,
        )
        if log.enabled
        else None
    )
    config = ProxyConfig(
        route=RouteRef(namespace=route.metadata.namespace, name=route.metadata.name),
        active_group=active_group,
        load_balancing=spec.load_balancing,
        upstreams=upstreams,
        engine_metrics=EngineMetricsConfig.model_validate(spec.engine_metrics.model_dump()),
        timeouts=TimeoutsConfig.model_validate(spec.proxy.timeouts.model_dump()),
        passive_health=PassiveHealthConfig(
            consecutive_failures=spec.failover.consecutive_failures,
            eject_seconds=spec.failover.eject_seconds,
            max_eject_seconds=max(spec.failover.eject_seconds, spec.failover.max_cooldown_seconds),
            retries=spec.proxy.retries,
        ),
        admission=AdmissionConfig(
            max_concurrency=spec.proxy.max_concurrency,
            queue_timeout_seconds=spec.proxy.queue_timeout_seconds,
        ),
        limits=LimitsConfig(
            semantics=LIMITS_SEMANTICS if rl.store.type == "Local" else SHARED_SEMANTICS,
            identity=rl.identity.type,
            header=rl.identity.header,
            default_tier=rl.default_tier,
            divisor=divisor,
            replicas=replicas,
            tiers=[_tier_config(t, by_tier.get(t.name), divisor) for t in rl.tiers],
            store=StoreConfig(
                type=rl.store.type,
                url=rl.store.url,
                password_file=f"{SECRETS_DIR}/{password.name}/{password.key}" if password else None,
            ),
        ),
        cache=CacheConfig.model_validate(spec.cache.model_dump()),
        access_log=access_log,
        max_body_bytes=spec.proxy.max_body_bytes,
    )
    return config.with_hash()
