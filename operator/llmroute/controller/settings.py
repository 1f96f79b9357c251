"""The operator's settings, read once from ``LLMROUTE_*`` environment variables and logged once at
start. Every variable the operator reads is a field here; a malformed value stops the operator at start
with a message naming the variable."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """An ``LLMROUTE_*`` variable holds a value of the wrong kind."""


def _env(name: str, default: str, parse: Callable[[str], T]) -> Callable[[], T]:
    def read() -> T:
        raw = os.environ.get(name, default)
        try:
            return parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{name}={raw!r}: {exc}") from exc

    return read


def _seconds(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _count(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _bool(raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise ValueError("must be true or false")
    return raw.lower() == "true"


@dataclass(frozen=True)
class OperatorSettings:
    """Defaults in brackets. Durations in seconds; ``rate_window`` is a PromQL duration (e.g. ``1m``)."""

    prometheus_url: str = field(
        default_factory=_env("LLMROUTE_PROMETHEUS_URL", "http://prometheus:9090", str)
    )
    metrics_interval_seconds: float = field(
        default_factory=_env("LLMROUTE_METRICS_INTERVAL_SECONDS", "15", _seconds)
    )
    history_step_seconds: int = field(default_factory=_env("LLMROUTE_HISTORY_STEP_SECONDS", "60", _count))
    history_chunk_hours: int = field(default_factory=_env("LLMROUTE_HISTORY_CHUNK_HOURS", "2", _count))
    query_timeout_seconds: float = field(
        default_factory=_env("LLMROUTE_QUERY_TIMEOUT_SECONDS", "10", _seconds)
    )
    rate_window: str = field(default_factory=_env("LLMROUTE_RATE_WINDOW", "1m", str))
    metrics_port: int = field(default_factory=_env("LLMROUTE_METRICS_PORT", "8081", int))  # 0: off
    max_concurrent_reconciles: int = field(
        default_factory=_env("LLMROUTE_MAX_CONCURRENT_RECONCILES", "8", _count)
    )
    # kopf's HTTP connections: every watch stream holds one (one per watched namespace), plus a few for
    # patches and Events; `llmroute operator` sets the figure from the namespaces it watches
    kopf_connections: int = field(default_factory=_env("LLMROUTE_KOPF_CONNECTIONS", "32", _count))
    dry_run: bool = field(default_factory=_env("LLMROUTE_DRY_RUN", "false", _bool))

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())
