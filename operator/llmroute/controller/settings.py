"""The operator's settings, read once from ``LLMROUTE_*`` environment variables and logged once at
start. Every variable the operator reads is a field here; a malformed value stops the operator at start
with a message naming the variable."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TypeVar

from llmroute.spec.base import URL_USERINFO
from llmroute.spec.upstream import DEFAULT_IMAGE, image_problem

T = TypeVar("T")


class SettingsError(ValueError):
    """An ``LLMROUTE_*`` variable holds a value of the wrong kind."""


class _Unquoted(ValueError):
    """A refused value the error must not quote (it holds a credential)."""


def _env(name: str, default: str, parse: Callable[[str], T]) -> Callable[[], T]:
    def read() -> T:
        raw = os.environ.get(name, default)
        try:
            return parse(raw)
        except _Unquoted as exc:
            raise SettingsError(f"{name}: {exc}") from None
        except ValueError as exc:
            raise SettingsError(f"{name}={raw!r}: {exc}") from exc

    return read


def _url(raw: str) -> str:
    """A Prometheus URL without ``user:password@`` (the URL is logged at start and sits in the pod spec)."""
    if re.match(URL_USERINFO, raw):
        raise _Unquoted(
            "must not carry credentials (user:password@): the URL is logged and stored in plain text; set "
            "LLMROUTE_PROMETHEUS_USERNAME and LLMROUTE_PROMETHEUS_PASSWORD_FILE (chart: prometheusAuth)"
        )
    return raw


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


def _duration(raw: str) -> str:
    """A PromQL duration such as ``90s``, ``1m`` or ``1m30s``."""
    if not re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", raw):
        raise ValueError("must be a PromQL duration such as 90s or 2m")
    return raw


def _headers(raw: str) -> dict[str, str]:
    """``Name=value`` pairs separated by commas (e.g. ``X-Scope-OrgID=tenant-a``)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name.strip()):
            raise ValueError(f"{part!r} is not Name=value")
        out[name.strip()] = value.strip()
    return out


def _duration_or_empty(raw: str) -> str:
    return _duration(raw) if raw else ""


def _non_negative(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _path(raw: str) -> str:
    return raw.strip()


def _image(raw: str) -> str:
    if (problem := image_problem(raw)) is not None:
        raise ValueError(problem)
    return raw


def _bool(raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise ValueError("must be true or false")
    return raw.lower() == "true"


@dataclass(frozen=True)
class OperatorSettings:
    """Defaults in brackets. Durations in seconds; ``rate_window`` is a PromQL duration (e.g. ``1m``)."""

    prometheus_url: str = field(
        default_factory=_env("LLMROUTE_PROMETHEUS_URL", "http://prometheus:9090", _url)
    )
    metrics_interval_seconds: float = field(
        default_factory=_env("LLMROUTE_METRICS_INTERVAL_SECONDS", "15", _seconds)
    )
    history_step_seconds: int = field(default_factory=_env("LLMROUTE_HISTORY_STEP_SECONDS", "60", _count))
    history_chunk_hours: int = field(default_factory=_env("LLMROUTE_HISTORY_CHUNK_HOURS", "2", _count))
    query_timeout_seconds: float = field(
        default_factory=_env("LLMROUTE_QUERY_TIMEOUT_SECONDS", "10", _seconds)
    )
    # how often Prometheus scrapes the proxies [60]: the default rate window spans four scrapes (as
    # Grafana's $__rate_interval does); LLMROUTE_RATE_WINDOW sets the window outright
    scrape_interval_seconds: float = field(
        default_factory=_env("LLMROUTE_SCRAPE_INTERVAL_SECONDS", "60", _seconds)
    )
    rate_window: str = field(default_factory=lambda: _env("LLMROUTE_RATE_WINDOW", "", _duration_or_empty)())
    # Prometheus connection: a bearer token file (re-read, so a projected ServiceAccount token works),
    # basic auth (password from a mounted Secret file), a CA bundle, extra headers (X-Scope-OrgID for
    # Mimir, Cortex and Thanos tenants); skipping TLS verification must be asked for
    prometheus_bearer_token_file: str = field(
        default_factory=_env("LLMROUTE_PROMETHEUS_BEARER_TOKEN_FILE", "", _path)
    )
    prometheus_username: str = field(default_factory=_env("LLMROUTE_PROMETHEUS_USERNAME", "", str))
    prometheus_password_file: str = field(
        default_factory=_env("LLMROUTE_PROMETHEUS_PASSWORD_FILE", "", _path)
    )
    prometheus_ca_file: str = field(default_factory=_env("LLMROUTE_PROMETHEUS_CA_FILE", "", _path))
    prometheus_insecure_skip_verify: bool = field(
        default_factory=_env("LLMROUTE_PROMETHEUS_INSECURE_SKIP_VERIFY", "false", _bool)
    )
    prometheus_headers: dict[str, str] = field(
        default_factory=_env("LLMROUTE_PROMETHEUS_HEADERS", "", _headers), repr=False
    )
    # how long an alert threshold must stay crossed before Degraded=True (the PrometheusRule's for:)
    alert_for_seconds: float = field(default_factory=_env("LLMROUTE_ALERT_FOR_SECONDS", "300", _non_negative))
    metrics_port: int = field(default_factory=_env("LLMROUTE_METRICS_PORT", "8081", int))  # 0: off
    max_concurrent_reconciles: int = field(
        default_factory=_env("LLMROUTE_MAX_CONCURRENT_RECONCILES", "8", _count)
    )
    # kopf's HTTP connections: every watch stream holds one (one per watched namespace), plus a few for
    # patches and Events; `llmroute operator` sets the figure from the namespaces it watches
    kopf_connections: int = field(default_factory=_env("LLMROUTE_KOPF_CONNECTIONS", "32", _count))
    dry_run: bool = field(default_factory=_env("LLMROUTE_DRY_RUN", "false", _bool))
    # the proxies' image when a route names none (the chart sets its own image): routes follow upgrades
    proxy_image: str = field(default_factory=_env("LLMROUTE_PROXY_IMAGE", DEFAULT_IMAGE, _image))

    @property
    def load_rate_window(self) -> str:
        """The range of the load rates: ``LLMROUTE_RATE_WINDOW``, else four scrape intervals."""
        return self.rate_window or f"{math.ceil(4 * self.scrape_interval_seconds)}s"

    def rate_window_for(self, scrape_interval_seconds: float | None) -> str:
        """The rate window of a route that states its Prometheus' scrape interval (four of them), else the
        operator's :attr:`load_rate_window`."""
        if scrape_interval_seconds is None:
            return self.load_rate_window
        return f"{math.ceil(4 * scrape_interval_seconds)}s"

    def describe(self) -> str:
        """Every setting for the start-up log line (header values are not shown: they may be secrets)."""
        shown = asdict(self) | {"prometheus_headers": sorted(self.prometheus_headers)}
        return ", ".join(f"{k}={v}" for k, v in shown.items()) + f", load_rate_window={self.load_rate_window}"
