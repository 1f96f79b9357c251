"""Thin, typed wrapper over ``prometheus_api_client.PrometheusConnect``: instant vectors keyed by label
values, and ranges as plain ``(unix seconds, value)`` lists. Counts every query it sends.

:class:`PromAuth` carries how to reach a real installation: a bearer token file (read on every request,
so a rotating projected ServiceAccount token keeps working), basic auth with the password from a file
(a mounted Secret), a CA bundle, explicit ``insecure_skip_verify``, and extra headers (e.g.
``X-Scope-OrgID`` for Mimir, Cortex and Thanos tenants).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from requests.auth import AuthBase, HTTPBasicAuth
from urllib3.util.retry import Retry

Samples = list[tuple[float, float]]


class PrometheusError(RuntimeError):
    """Prometheus unreachable, or it refused the query."""


class PrometheusQueryError(PrometheusError):
    """Prometheus answered and refused the query itself (HTTP 400 ``bad_data``: it does not parse; 422
    ``execution``: it cannot be evaluated). The query's fault, not the server's: one route's wrong
    override must not cost every other route on that Prometheus its metrics."""


_REFUSAL = re.compile(r"HTTP Status Code (\d{3}) \((b'.*'|b\".*\")\)\Z", re.DOTALL)
REFUSED_QUERY = frozenset({400, 422})


def _refused(exc: Exception) -> PrometheusQueryError | None:
    """The query refusal ``exc`` reports, with Prometheus' own reason (prometheus_api_client writes the
    status and the body's ``repr`` into its message: read back with ``ast.literal_eval`` and ``json``);
    ``None`` for any other failure."""
    match = _REFUSAL.match(str(exc))
    if match is None or int(match.group(1)) not in REFUSED_QUERY:
        return None
    try:
        reason = str(json.loads(ast.literal_eval(match.group(2)))["error"])
    except (ValueError, SyntaxError, KeyError, TypeError):
        reason = "no reason given"
    return PrometheusQueryError(f"Prometheus refused the query (HTTP {match.group(1)}): {reason}")


@dataclass(frozen=True)
class PromAuth:
    """Credentials and TLS settings for a Prometheus-compatible API (all optional)."""

    bearer_token_file: str = ""
    username: str = ""
    password_file: str = ""
    ca_file: str = ""
    insecure_skip_verify: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)

    def requests_auth(self) -> AuthBase | None:
        if self.bearer_token_file:
            return _BearerTokenFile(self.bearer_token_file)
        if self.username:
            return _BasicAuthFile(self.username, self.password_file)
        return None

    def verify(self) -> bool | str:
        """``requests``' ``verify``: the CA bundle, or False only when skipping was asked for."""
        if self.insecure_skip_verify:
            return False
        return self.ca_file or True


class _BearerTokenFile(AuthBase):
    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        try:
            token = Path(self.path).read_text().strip()
        except OSError as exc:
            raise PrometheusError(f"cannot read the bearer token file {self.path}: {exc.strerror}") from exc
        r.headers["Authorization"] = f"Bearer {token}"
        return r


class _BasicAuthFile(AuthBase):
    def __init__(self, username: str, password_file: str) -> None:
        self.username, self.password_file = username, password_file

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        password = ""
        if self.password_file:
            try:
                password = Path(self.password_file).read_text().strip()
            except OSError as exc:
                raise PrometheusError(
                    f"cannot read the password file {self.password_file}: {exc.strerror}"
                ) from exc
        result: requests.PreparedRequest = HTTPBasicAuth(self.username, password)(r)
        return result


class PromClient:
    def __init__(self, url: str, timeout: float = 10.0, auth: PromAuth | None = None):
        self.url = url
        self.timeout = timeout
        self.queries_sent = 0
        auth = auth or PromAuth()
        # one quick retry on a gateway error; anything longer would delay the whole metrics cycle
        retry = Retry(total=1, backoff_factor=0.1, status_forcelist=(502, 503, 504))
        session = requests.Session()
        session.verify = auth.verify()
        self._conn = PrometheusConnect(
            url=url,
            headers=dict(auth.headers) or None,
            retry=retry,
            auth=auth.requests_auth(),  # any requests auth, not only the documented tuple
            session=session,
        )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        self.queries_sent += 1
        try:
            params = {"timeout": f"{self.timeout:g}s"}
            result: list[dict[str, Any]] = fn(*args, params=params, timeout=self.timeout, **kwargs)
        except Exception as exc:  # requests errors, PrometheusApiClientException, bad JSON
            refused = _refused(exc)
            if refused is not None:
                raise refused from exc
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
