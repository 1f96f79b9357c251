"""Prometheus 3's left-open range selectors, on the server the tests run: a window ``[w]`` holds the
samples in ``(t - w, t]``. With samples every 60 s (a 60 s scrape, or per-minute backfilled history) and a
step aligned to them, ``rate(x[1m])`` holds one sample and answers nothing, where Prometheus 2 held two;
``[2m]`` holds two. Windows must span at least two sample intervals (Grafana's ``$__rate_interval`` takes
four, and so do the dashboard and the alert rules)."""

from __future__ import annotations

import time
from pathlib import Path

from llmroute_dev.prometheus import Prometheus, Series


def test_a_one_interval_window_is_empty_and_two_intervals_are_not(tmp_path: Path) -> None:
    end = float(int(time.time()) // 60 * 60 - 600)
    start = end - 3600
    counter = [(start + 60 * i, 60.0 * i) for i in range(61)]  # +1 per second, one sample a minute
    prom = Prometheus(tmp_path / "prom", backfill=[Series("llmroute_test_requests", {}, counter, "counter")])
    prom.start()
    try:
        one = prom.query_range("rate(llmroute_test_requests_total[1m])", start + 600, end, 60)
        two = prom.query_range("rate(llmroute_test_requests_total[2m])", start + 600, end, 60)
    finally:
        prom.stop()
    assert one == []
    (series,) = two
    assert len(series["values"]) == 51
    assert {float(v) for _, v in series["values"]} == {1.0}
