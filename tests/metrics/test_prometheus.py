"""The real Prometheus the harness starts: backfilled history over a week, and live scraping."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llmroute_dev.prometheus import Prometheus, Series
from tests.kube import eventually

DAY = 86400


def _daily_ramp(start: float, days: int, step: int = 300) -> list[tuple[float, float]]:
    """A gauge that peaks at 100 at 12:00 UTC and bottoms at 20 at 00:00, every day."""
    samples = []
    for ts in range(int(start), int(start) + days * DAY, step):
        hour = (ts % DAY) / 3600
        samples.append((float(ts), 60 - 40 * math.cos(2 * math.pi * hour / 24)))
    return samples


@pytest.fixture
def history_prometheus(tmp_path: Path) -> Iterator[tuple[Prometheus, float]]:
    now = time.time()
    start = (now // DAY - 7) * DAY
    series = [Series("llmroute_test_load", {"route": "ns/chat"}, _daily_ramp(start, 7))]
    prom = Prometheus(tmp_path / "prom", backfill=series).start()
    try:
        yield prom, start
    finally:
        prom.stop()


def test_backfilled_week_answers_query_range(history_prometheus: tuple[Prometheus, float]) -> None:
    prom, start = history_prometheus
    end = start + 7 * DAY - 300
    result = prom.query_range('llmroute_test_load{route="ns/chat"}', start, end, 3600)
    assert len(result) == 1
    values = [(float(t), float(v)) for t, v in result[0]["values"]]
    assert len(values) == 7 * 24
    by_hour = {int(t % DAY // 3600): v for t, v in values}
    assert by_hour[12] == pytest.approx(100, abs=0.5)
    assert by_hour[0] == pytest.approx(20, abs=0.5)
    # the profile repeats every day of the week
    noons = [v for t, v in values if int(t % DAY // 3600) == 12]
    assert len(noons) == 7 and max(noons) - min(noons) < 1


class _Metrics(BaseHTTPRequestHandler):
    counter = 0

    def do_GET(self) -> None:
        _Metrics.counter += 5
        body = (
            "# TYPE llmroute_requests_total counter\n"
            f'llmroute_requests_total{{route="ns/live",tier="free",upstream="a",code="200",cache="miss"}} '
            f"{_Metrics.counter}\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def live_target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_live_target_is_scraped_and_queryable(prometheus: Prometheus, live_target: str) -> None:
    prometheus.set_targets([live_target], {"pod": "proxy-0"})
    try:
        up = eventually(
            lambda: prometheus.query(f'up{{instance="{live_target}"}}'), timeout=30, what="target scraped"
        )
        assert up[0]["value"][1] == "1"
        series = eventually(
            lambda: prometheus.query('rate(llmroute_requests_total{route="ns/live"}[5s]) > 0'),
            timeout=30,
            what="a rate over live samples",
        )
        assert series[0]["metric"]["pod"] == "proxy-0"
        assert series[0]["metric"]["tier"] == "free"
    finally:
        prometheus.set_targets([])
