"""``llmroute report --prometheus`` against a real Prometheus with eight backfilled days of the proxy's
counters: the peak hours it finds are the ones the history was built with, in the route's time zone, and
the patch it suggests keeps the route valid (``llmroute validate``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmroute.cli.main import main
from llmroute.sim.recommend import merge_patch
from llmroute_dev.prometheus import Prometheus, Series

DAYS = 8
PEAK_UTC = (13, 14, 15)  # 100 requests a minute then, 20 otherwise
ROUTE = "ns/chat"


def counters(start: int, end: int) -> list[Series]:
    """Cumulative request, token and rate-limit counters at one sample a minute; a minute's requests are
    counted at its end. Premium sends 70 % of the load, basic 30 % of which a tenth is refused (429)."""
    totals: dict[str, float] = {"premium": 0.0, "basic": 0.0, "basic429": 0.0, "hits": 0.0, "tokens": 0.0}
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in totals}
    for ts in range(start + 60, end + 1, 60):
        per_minute = 100.0 if ((ts - 60) % 86400) // 3600 in PEAK_UTC else 20.0
        totals["premium"] += 0.6 * per_minute
        totals["hits"] += 0.1 * per_minute
        totals["basic"] += 0.27 * per_minute
        totals["basic429"] += 0.03 * per_minute
        totals["tokens"] += 500 * per_minute
        for key, value in totals.items():
            samples[key].append((float(ts), value))
    base = {"route": ROUTE, "upstream": "a"}

    def requests(key: str, tier: str, code: str, cache: str) -> Series:
        labels = base | {"tier": tier, "code": code, "cache": cache}
        return Series("llmroute_requests", labels, samples[key], "counter")

    return [
        requests("premium", "premium", "200", "miss"),
        requests("hits", "premium", "200", "hit"),
        requests("basic", "basic", "200", "bypass"),
        requests("basic429", "basic", "429", "bypass"),
        Series("llmroute_ratelimited", {"route": ROUTE, "tier": "basic"}, samples["basic429"], "counter"),
        Series(
            "llmroute_tokens",
            {"route": ROUTE, "tier": "premium", "direction": "input"},
            samples["tokens"],
            "counter",
        ),
    ]


@pytest.fixture
def history(tmp_path: Path) -> Iterator[Prometheus]:
    end = int(time.time() // 3600 * 3600) - 3600
    prom = Prometheus(tmp_path / "prom", backfill=counters(end - DAYS * 86400, end)).start()
    try:
        yield prom
    finally:
        prom.stop()


def route_doc() -> dict[str, Any]:
    return {
        "apiVersion": "llmroute.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"name": "chat", "namespace": "ns"},
        "spec": {
            "upstreams": [{"name": "a", "url": "http://127.0.0.1:9/v1", "model": "m"}],
            "proxy": {"minReplicas": 1, "maxReplicas": 10},
            "scaling": {
                "metric": {"targetPerReplica": 0.5},
                "schedules": [
                    {
                        "name": "nightly",
                        "timezone": "Asia/Tokyo",
                        "start": "01:00",
                        "end": "05:00",
                        "maxReplicas": 4,
                    }
                ],
            },
            "rateLimits": {
                "identity": {"type": "Header"},
                "tiers": [{"name": "premium", "priority": 10}, {"name": "basic"}],
            },
        },
    }


def test_peak_hours_and_a_valid_patch_from_prometheus(
    history: Prometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    route_file = tmp_path / "route.yaml"
    route_file.write_text(yaml.safe_dump(route_doc()))
    args = ["report", "--prometheus", history.url, "--route", ROUTE, "--days", str(DAYS), "--quiet"]
    assert main([*args, "--route-file", str(route_file), "--json", "--header", "X-Scope-OrgID=team-a"]) == 0
    report = json.loads(capsys.readouterr().out)
    profile = report["profile"]
    assert profile["timezone"] == "Asia/Tokyo"  # the route's schedules say where its hours are
    assert sorted(profile["peak_hours"]) == [0, 22, 23]  # 13-15 UTC is 22-00 in Tokyo (UTC+9, no DST)
    assert profile["peak_to_quiet_ratio"] == pytest.approx(5.0, rel=0.05)
    assert report["ratelimited_rate"] == pytest.approx(0.03, rel=0.05)
    assert report["cache"]["hit_ratio"] == pytest.approx(0.1 / 0.7, rel=0.05)
    assert report["by_tier"]["premium"] / report["requests"] == pytest.approx(0.7, rel=0.05)
    assert not report["clients"]["available"]
    patch = report["recommendations"]["patch"]
    offpeak = patch["spec"]["rateLimits"]["schedules"][-1]
    assert (
        offpeak["name"] == "off-peak" and offpeak["multiplier"] == 4.0 and offpeak["timezone"] == "Asia/Tokyo"
    )
    premium = patch["spec"]["rateLimits"]["tiers"][0]
    assert premium["name"] == "premium" and 70 <= premium["requestsPerMinute"] <= 100  # 1.25 x 70 a minute
    peak = patch["spec"]["scaling"]["schedules"]
    assert [s["name"] for s in peak] == ["nightly", "peak"]
    assert peak[1]["start"] == "22:00" and peak[1]["end"] == "01:00" and peak[1]["minReplicas"] == 4
    patched = tmp_path / "patched.yaml"
    patched.write_text(yaml.safe_dump(merge_patch(route_doc(), patch)))
    assert main(["validate", str(patched)]) == 0
    assert main([*args, "--timezone", "UTC"]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("peak hours:"))
    assert {int(h.strip()[:2]) for h in line.removeprefix("peak hours:").split("(")[0].split(",")} == set(
        PEAK_UTC
    )
    assert "clients: Prometheus has no per-client label" in text
