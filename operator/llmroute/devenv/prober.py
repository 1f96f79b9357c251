"""Active health probes of upstream endpoints, exported for Prometheus (what a blackbox exporter does).

Once the operator fails over, the proxies stop sending requests to the failed group, so their own
metrics can no longer tell when it recovers. A probe keeps asking every upstream - one small chat request
each ``interval`` - and counts the outcomes in ``llmroute_probe_attempts_total{route,upstream,outcome}``,
with the same outcome values as the proxies' ``llmroute_proxy_upstream_attempts_total`` (``ok``,
``status_<code>``, ``error``, ``timeout``), so a route's upstream-health queries can add the two up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, start_http_server

from llmroute.devenv.procs import free_port

METRIC = "llmroute_probe_attempts_total"


@dataclass(frozen=True)
class ProbeTarget:
    name: str
    url: str  # the upstream's base URL (``.../v1``)
    model: str
    key: str | None = field(default=None, repr=False)


class Prober:
    def __init__(
        self, route: str, targets: Sequence[ProbeTarget], *, interval: float = 1.0, timeout: float = 5.0
    ) -> None:
        self.route = route
        self.targets = list(targets)
        self.interval = interval
        self.timeout = timeout
        self.registry = CollectorRegistry()
        self.attempts = Counter(
            METRIC.removesuffix("_total"),
            "Active probes of upstream endpoints by outcome",
            ["route", "upstream", "outcome"],
            registry=self.registry,
        )
        self.port = 0
        self._server: Any = None

    @property
    def target(self) -> str:
        """The ``host:port`` Prometheus scrapes."""
        return f"127.0.0.1:{self.port}"

    def serve(self) -> Prober:
        self.port = free_port()
        self._server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    async def run(self, stop: asyncio.Event) -> None:
        """Probe every target each ``interval`` until ``stop`` is set."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not stop.is_set():
                await asyncio.gather(*(self._probe(session, t) for t in self.targets))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)

    async def _probe(self, session: aiohttp.ClientSession, target: ProbeTarget) -> None:
        body = {"model": target.model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
        headers = {"Authorization": f"Bearer {target.key}"} if target.key else {}
        try:
            async with session.post(f"{target.url}/chat/completions", json=body, headers=headers) as resp:
                await resp.read()
                outcome = "ok" if resp.status < 400 else f"status_{resp.status}"
        except TimeoutError:
            outcome = "timeout"
        except (aiohttp.ClientError, OSError):
            outcome = "error"
        self.attempts.labels(self.route, target.name, outcome).inc()
