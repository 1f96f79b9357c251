"""Operator settings, read once from environment variables (and logged once at start)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    prometheus_url: str = field(
        default_factory=lambda: _env("LLMROUTE_PROMETHEUS_URL", "http://prometheus:9090")
    )
    metrics_interval_seconds: float = field(
        default_factory=lambda: float(_env("LLMROUTE_METRICS_INTERVAL_SECONDS", "15"))
    )
    history_step_seconds: int = field(
        default_factory=lambda: int(_env("LLMROUTE_HISTORY_STEP_SECONDS", "60"))
    )
    history_chunk_hours: int = field(default_factory=lambda: int(_env("LLMROUTE_HISTORY_CHUNK_HOURS", "2")))
    query_timeout_seconds: float = field(
        default_factory=lambda: float(_env("LLMROUTE_QUERY_TIMEOUT_SECONDS", "10"))
    )
    rate_window: str = field(default_factory=lambda: _env("LLMROUTE_RATE_WINDOW", "1m"))
    metrics_port: int = field(default_factory=lambda: int(_env("LLMROUTE_METRICS_PORT", "8081")))
    min_interval_seconds: float = field(
        default_factory=lambda: float(_env("LLMROUTE_MIN_RECONCILE_INTERVAL_SECONDS", "0"))
    )
    max_concurrent_reconciles: int = field(
        default_factory=lambda: int(_env("LLMROUTE_MAX_CONCURRENT_RECONCILES", "8"))
    )
    dry_run: bool = field(default_factory=lambda: _env("LLMROUTE_DRY_RUN", "false").lower() == "true")
    history_decisions: int = 10

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())
