"""Thin, typed wrapper over ``prometheus_api_client.PrometheusConnect``: instant vectors keyed by label
values, and ranges as plain ``(unix seconds, value)`` lists. Counts every query it sends."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

Samples = list[tuple[float, float]]


class PrometheusError(RuntimeError):
    """Prometheus unreachable, or it refused the query."""


class PromClient:
    def __init__(self, url: str, timeout: float = 10.0):
        self.url = url
        self.timeout = timeout
        self.queries_sent = 0
        # one quick retry on a gateway error; anything longer would delay the whole metrics cycle
        retry = Retry(total=1, backoff_factor=0.1, status_forcelist=(502, 503, 504))
        self._conn = PrometheusConnect(url=url, disable_ssl=not url.startswith("https"), retry=retry)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        self.queries_sent += 1
        try:
            params = {"timeout": f"{self.timeout:g}s"}
            result: list[dict[str, Any]] = fn(*args, params=params, timeout=self.timeout, **kwargs)
        except Exception as exc:  # requests errors, PrometheusApiClientException, bad JSON
            raise PrometheusError(f"{type(exc).__name__}: {exc}") from exc
        return result

    def instant(self, query: str, labels: Sequence[str] = ("route",)) -> dict[tuple[str, ...], float]:
        """One number per distinct combination of ``labels``; NaN/Inf samples are dropped."""
        out: dict[tuple[str, ...], float] = {}
        for item in self._call(self._conn.custom_query, query=query):
            value = float(item["value"][1])
            if math.isfinite(value):
                out[tuple(item["metric"].get(name, "") for name in labels)] = value
        return out

    def scalar(self, query: str) -> float | None:
        """The single number a per-route override returns (the sum if it returns several)."""
        values = self.instant(query, labels=())
        return sum(values.values()) if values else None

    def range(
        self,
        query: str,
        start: datetime,
        end: datetime,
        step_seconds: int,
        labels: Sequence[str] = ("route",),
    ) -> dict[tuple[str, ...], Samples]:
        out: dict[tuple[str, ...], Samples] = {}
        items = self._call(
            self._conn.custom_query_range,
            query=query,
            start_time=start,
            end_time=end,
            step=f"{step_seconds}s",
        )
        for item in items:
            key = tuple(item["metric"].get(name, "") for name in labels)
            samples = [(float(t), float(v)) for t, v in item["values"]]
            out.setdefault(key, []).extend((t, v) for t, v in samples if math.isfinite(v))
        return out
