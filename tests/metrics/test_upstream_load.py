"""The operator's per-upstream load query on a real Prometheus scraping two proxy replicas."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmroute.core.observed import UpstreamLoad, upstream_loads
from llmroute.prom.client import PromClient
from llmroute.prom.queries import batched
from llmroute_dev.prometheus import Prometheus
from tests.kube import eventually

# what two replicas' /metrics say (as llmroute.proxy.loadmetrics writes them)
REPLICAS = [
    {
        "vllm": {"inflight_requests": 3, "queue_depth": 2, "kv_cache_usage": 0.5},
        "azure": {"inflight_requests": 1, "quota_remaining_ratio": 0.6},
    },
    {
        "vllm": {"inflight_requests": 5, "queue_depth": 4, "kv_cache_usage": 0.75},
        "azure": {"inflight_requests": 0, "quota_remaining_ratio": 0.4},
    },
]


def _page(replica: dict[str, dict[str, float]]) -> bytes:
    lines = []
    for upstream, gauges in replica.items():
        for name, value in gauges.items():
            lines.append(f'llmroute_upstream_{name}{{route="ns/r",upstream="{upstream}"}} {value}')
    return ("\n".join(lines) + "\n").encode()


def _server(body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def replicas() -> Iterator[list[str]]:
    servers = [_server(_page(r)) for r in REPLICAS]
    try:
        yield [f"127.0.0.1:{s.server_address[1]}" for s in servers]
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


def test_upstream_load_over_replicas(prometheus: Prometheus, replicas: list[str]) -> None:
    prometheus.set_targets(replicas)
    try:
        client = PromClient(prometheus.url, timeout=10)
        query = batched()["upstream_load"]

        def both_scraped() -> dict[str, dict[str, UpstreamLoad]] | None:
            loads = upstream_loads(client.instant(query, ("route", "upstream", "signal")))
            vllm = loads.get("ns/r", {}).get("vllm")
            return loads if vllm is not None and vllm.inflight == 8 else None

        loads = eventually(both_scraped, timeout=30, what="both replicas scraped")
        assert loads["ns/r"] == {
            "vllm": UpstreamLoad(inflight=8.0, queue_depth=4.0, kv_cache_usage=0.75),
            "azure": UpstreamLoad(inflight=1.0, quota_remaining_ratio=0.4),
        }
    finally:
        prometheus.set_targets([])
