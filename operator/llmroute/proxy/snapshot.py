"""Load a rendered :class:`ProxyConfig` file into the :class:`ConfigSnapshot` the request path reads.

A snapshot carries the validated config plus what it points at: upstream API keys (read from the mounted
Secret file or the environment variable the config names) and the tier client keys, stored as sha256
digests only. Anything wrong — bad JSON, a schema error, a missing key file — raises :class:`ConfigError`
so the caller can keep the last good snapshot. Error messages never include key material.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from llmroute.spec.proxyconfig import SCHEMA_VERSION, ProxyConfig, TierConfig, UpstreamConfig

HASH_PREFIX = "sha256:"


class ConfigError(Exception):
    """The config file cannot be served; the message says why (never with secrets)."""


@dataclass(frozen=True)
class ConfigSnapshot:
    """One loaded config: what the handlers need, precomputed (secrets excluded from ``repr``)."""

    config: ProxyConfig
    route: str
    upstream_keys: dict[str, str | None] = field(repr=False)
    tiers: dict[str, TierConfig]
    tier_by_key: dict[bytes, str]
    by_model: dict[str, list[UpstreamConfig]]
    signature: tuple[tuple[str, int, int, int], ...] = field(default=())
    store_password: str | None = field(default=None, repr=False)
    access_log_key: bytes | None = field(default=None, repr=False)

    @property
    def hash(self) -> str:
        return self.config.hash or self.config.content_hash()


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _stat(path: str) -> tuple[str, int, int, int]:
    try:
        st = Path(path).stat()  # follows symlinks: a kubelet ``..data`` swap changes inode and mtime
    except OSError:
        return (path, -1, -1, -1)
    return (path, st.st_ino, st.st_mtime_ns, st.st_size)


def signature(path: str, config: ProxyConfig | None) -> tuple[tuple[str, int, int, int], ...]:
    """Identity of the config file and of every secret file it references (changes mean: reload)."""
    paths = [path] if path else []
    if config is not None:
        paths += [u.api_key_file for u in config.upstreams if u.api_key_file]
        paths += [t.api_keys_file for t in config.limits.tiers if t.api_keys_file]
        if config.limits.store.password_file:
            paths.append(config.limits.store.password_file)
        if config.access_log is not None and config.access_log.hash_key_file:
            paths.append(config.access_log.hash_key_file)
    return tuple(_stat(p) for p in paths)


def _read_secret(path: str, what: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None


def _upstream_key(up: UpstreamConfig) -> str | None:
    """The mounted Secret file when it exists, else the environment variable (running outside
    Kubernetes, e.g. ``llmroute render --config-only`` then ``llmroute proxy``); one of them must hold it."""
    env_value = os.environ.get(up.api_key_env, "").strip() if up.api_key_env else ""
    if up.api_key_file and (Path(up.api_key_file).exists() or not env_value):
        key = _read_secret(up.api_key_file, f"upstream {up.name} apiKeyFile")
        if not key:
            raise ConfigError(f"upstream {up.name} apiKeyFile {up.api_key_file} is empty")
        return key
    if up.api_key_env:
        if not env_value:
            raise ConfigError(f"upstream {up.name}: environment variable {up.api_key_env} is not set")
        return env_value
    return None


def _tier_keys(tier: TierConfig) -> list[bytes]:
    if not tier.api_keys_file:
        return []
    digests: list[bytes] = []
    text = _read_secret(tier.api_keys_file, f"tier {tier.name} apiKeysFile")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(HASH_PREFIX):
            try:
                digest = bytes.fromhex(line[len(HASH_PREFIX) :])
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise ConfigError(f"tier {tier.name} apiKeysFile line {number}: bad sha256 digest")
            digests.append(digest)
        else:
            digests.append(hash_key(line))
    return digests


def _check(config: ProxyConfig) -> None:
    if config.version > SCHEMA_VERSION:
        raise ConfigError(f"config version {config.version} is newer than supported {SCHEMA_VERSION}")
    if config.hash and config.hash != config.content_hash():
        raise ConfigError("config hash does not match its content (truncated or edited file?)")
    names = [u.name for u in config.upstreams]
    if len(set(names)) != len(names):
        raise ConfigError("upstream names must be unique")
    for up in config.upstreams:
        if not up.url.startswith(("http://", "https://")):
            raise ConfigError(f"upstream {up.name}: url must be http(s)")
    tiers = [t.name for t in config.limits.tiers]
    if len(set(tiers)) != len(tiers):
        raise ConfigError("tier names must be unique")
    default = config.limits.default_tier
    if default is not None and config.limits.tiers and default not in tiers:
        raise ConfigError(f"limits.defaultTier {default} is not a tier")
    identity = config.limits.identity
    if not tiers and identity != "Unauthenticated":
        raise ConfigError(
            "limits: no tiers identify the clients; a route that serves anyone must say "
            "limits.identity: Unauthenticated"
        )
    if identity == "Unauthenticated" and tiers and default is None:
        raise ConfigError("limits.identity Unauthenticated with tiers needs limits.defaultTier")
    store = config.limits.store
    if store.type == "Redis" and not store.url:
        raise ConfigError("limits.store.url is required for a Redis store")
    if config.admission.max_concurrency < 1:
        raise ConfigError("admission.maxConcurrency must be at least 1")


def parse(text: str, file_stat: tuple[tuple[str, int, int, int], ...] = ()) -> ConfigSnapshot:
    """Validate config text and resolve the secrets it references.

    ``file_stat`` is the config file's signature taken *before* it was read; secret files are stat'ed
    before they are read too, so a change racing with the read is seen at the next poll.
    """
    try:
        config = ProxyConfig.loads(text)
    except ValueError as exc:  # JSONDecodeError and ValidationError are both ValueErrors
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"invalid config: {where}: {first['msg']}") from None
        raise ConfigError(f"invalid config: not JSON: {exc}") from None
    _check(config)
    stats = file_stat + signature("", config)
    keys = {u.name: _upstream_key(u) for u in config.upstreams}
    tier_by_key: dict[bytes, str] = {}
    for tier in config.limits.tiers:
        for digest in _tier_keys(tier):
            tier_by_key.setdefault(digest, tier.name)
    password_file = config.limits.store.password_file
    password = _read_secret(password_file, "limits.store passwordFile") if password_file else None
    log = config.access_log
    log_key = None
    if log is not None and log.hash_key_file:
        log_key = _read_secret(log.hash_key_file, "accessLog hashKeyFile").encode()
        if not log_key:
            raise ConfigError(f"accessLog hashKeyFile {log.hash_key_file} is empty")
    by_model: dict[str, list[UpstreamConfig]] = {}
    for up in config.upstreams:
        by_model.setdefault(up.model, []).append(up)
    return ConfigSnapshot(
        config=config,
        route=f"{config.route.namespace}/{config.route.name}",
        upstream_keys=keys,
        tiers={t.name: t for t in config.limits.tiers},
        tier_by_key=tier_by_key,
        by_model=by_model,
        signature=stats,
        store_password=password,
        access_log_key=log_key,
    )


def load(path: str) -> ConfigSnapshot:
    file_stat = (_stat(path),)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    return parse(text, file_stat)
