"""The usage report's parts on small logs whose right answers are computed by hand: reading (gzip, stdin,
prefixes, bad lines, newer versions, merging), the hourly profile, client segments, recommendations and
the commented patch."""

from __future__ import annotations

import gzip
import io
import json
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml

from llmroute.cli.main import main
from llmroute.core import gcra
from llmroute.sim import hourly, pacing, patchyaml, segments, usagereport
from llmroute.sim.accesslog import ReadStats, read
from llmroute.sim.logstats import LogStats, band
from llmroute.sim.recommend import guard_limit, merge_patch, nice_up, quantile, refused_share
from llmroute.spec.accesslog import BAD_TIME, problem
from llmroute.spec.route import LLMRoute

MONDAY = datetime(2025, 3, 3, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def rec(when: datetime, client: str | None = "c", **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "time": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "request_id": "r",
        "route": "ns/r",
        "tier": "team",
        "client": client,
        "endpoint": "/v1/chat/completions",
        "model": "m",
        "stream": False,
        "status": 200,
        "error_type": None,
        "input_tokens": 10,
        "output_tokens": 5,
        "request_bytes": 40,
        "latency_ms": 100.0,
        "ttfb_ms": 20.0,
        "cache": "bypass",
        "upstream": "a",
        "retries": 0,
        "sample_rate": 1.0,
    }
    return base | kw


def write_log(path: Path, records: list[dict[str, Any]], compress: bool = False) -> Path:
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_reader_gzip_prefixes_bad_lines_and_versions(tmp_path: Path) -> None:
    good = [rec(MONDAY + timedelta(seconds=i)) for i in range(3)]
    text = (
        orjson.dumps(good[0]) + b"\n"
        + b"2025-03-03T00:00:01.000000000Z stdout F " + orjson.dumps(good[1]) + b"\n"  # CRI log prefix
        + b"2025-03-03 00:00:01 INFO llmroute.proxy listening\n"
        + b'{"v": 1, "time": "2025-03-03T00:00:0\n'  # truncated last line of a rotated file
        + orjson.dumps(good[2] | {"v": 2}) + b"\n"
        + b"\n"
    )  # fmt: skip
    path = tmp_path / "a.log.1"
    path.write_bytes(gzip.compress(text))  # no .gz suffix: told by its first bytes
    stats = ReadStats()
    out = list(read([str(path)], stats))
    assert [r["time"] for r in out] == [good[0]["time"], good[1]["time"]]
    assert stats.skipped == {
        "not an access-log line": 1,
        "malformed JSON": 1,
        "format version newer than 1": 1,
    }
    assert stats.examples["malformed JSON"] == f"{path}:4"


def test_reader_merges_sources_in_time_order(tmp_path: Path) -> None:
    a = write_log(tmp_path / "a", [rec(MONDAY + timedelta(seconds=s)) for s in (0, 2, 4)])
    b = write_log(tmp_path / "b", [rec(MONDAY + timedelta(seconds=s)) for s in (1, 3, 5)], compress=True)
    times = [r["time"] for r in read([str(a), str(b)], ReadStats())]
    assert times == sorted(times) and len(times) == 6
    with pytest.raises(OSError):
        read([str(a), str(tmp_path / "missing")], ReadStats())


def test_hourly_windows_and_profile() -> None:
    assert hourly.windows([22, 23, 0, 1, 9]) == [(22, 2), (9, 10)]
    assert hourly.windows(list(range(24))) == [(0, 0)]
    # two days, 09-17 UTC busy (10/h), else 2/h; Tokyo is UTC+9 so the busy hours are 18-02 there
    per_hour = np.array([10.0 if 9 <= h % 24 < 17 else 2.0 for h in range(48)])
    per_hour[30] = np.nan  # a gap: left out of the means, never a quiet hour
    series = hourly.HourlySeries(MONDAY, per_hour, per_hour * 100)
    utc = hourly.profile(series, "UTC")
    assert sorted(utc["peak_hours"]) == list(range(9, 17)) and 6 in utc["quiet_hours"]
    assert utc["peak_to_quiet_ratio"] == pytest.approx(5.0)
    assert utc["heatmap"]["requests"][0][9] == 10.0 and utc["heatmap"]["requests"][2][9] is None
    assert utc["missing_hours"] == 1 and utc["hourly_mean_requests"][6] == 2.0
    tokyo = hourly.profile(series, "Asia/Tokyo")
    assert sorted(tokyo["peak_hours"]) == [0, 1, 18, 19, 20, 21, 22, 23]
    minutes = np.ones(150)
    minutes[70] = np.nan
    folded = hourly.from_minutes(MONDAY + timedelta(minutes=30), minutes, None)
    assert folded.start == MONDAY + timedelta(hours=1) and math.isnan(folded.requests[0])
    assert folded.hours == 2 and folded.requests[1] == 60  # the partial first half hour is dropped


def test_partial_first_and_last_hours_of_a_log_are_missing_not_quiet() -> None:
    """A day of logs from 20:30 to 20:30 holds two half hours of 20:00: read as an hour each, the busiest
    hour would be the quietest."""
    stats = LogStats("UTC")
    start = MONDAY + timedelta(hours=20, minutes=30)
    for minute in range(24 * 60):
        when = start + timedelta(minutes=minute)
        for i in range(4 if 18 <= when.hour < 23 else 2):
            stats.add(rec(when + timedelta(seconds=i), f"c{i}"))
    stats.finish()
    series = stats.series()
    assert series is not None and series.hours == 25
    assert math.isnan(series.requests[0]) and math.isnan(series.requests[-1])
    assert series.requests[1] == 4 * 60
    prof = hourly.profile(series, "UTC")
    assert 20 not in prof["quiet_hours"] and prof["hourly_median_requests"][20] is None
    assert sorted(prof["peak_hours"]) == [18, 19, 21, 22] and prof["missing_hours"] == 2
    # a log from the first to the last minute of its hours keeps them
    whole = LogStats("UTC")
    for minute in (0, 59, 60, 119):
        whole.add(rec(MONDAY + timedelta(minutes=minute), "c"))
    whole.finish()
    full = whole.series()
    assert full is not None and list(full.requests) == [2, 2]


def segment_log() -> list[dict[str, Any]]:
    """Eight days; 'heavy' 200 requests on each of 8 days, 'reg1'/'reg2' 20 a day on 8 days, 'occ' 20 on
    one day (active on 1 of 8 days), 'tiny' 3 on each of 8 days (too few per active day)."""
    out: list[dict[str, Any]] = []
    plan = {"heavy": (200, range(8)), "reg1": (20, range(8)), "reg2": (20, range(8)), "occ": (20, [3]),
            "tiny": (3, range(8))}  # fmt: skip
    for day in range(8):
        for client, (per_day, days) in plan.items():
            if day not in days:
                continue
            for i in range(per_day):
                when = MONDAY + timedelta(days=day, hours=10, seconds=i * 5)
                status = 429 if client == "heavy" and i % 10 == 0 else 200
                out.append(rec(when, client, status=status, input_tokens=None if status == 429 else 10))
    out.append(rec(MONDAY + timedelta(days=7, hours=23), None))  # no client id
    return sorted(out, key=lambda r: r["time"])


def test_segments_and_shares_by_hand() -> None:
    stats = LogStats("UTC")
    for r in segment_log():
        stats.add(r)
    stats.finish()
    summary, segment = segments.summary(stats, segments.Thresholds())
    assert segment == {"heavy": "heavy", "reg1": "regular", "reg2": "regular", "occ": "occasional",
                       "tiny": "occasional"}  # fmt: skip
    total = 8 * 200 + 2 * 8 * 20 + 20 + 8 * 3 + 1
    seg = summary["segments"]
    assert seg["heavy"]["requests_share"] == pytest.approx(1600 / total)
    assert seg["regular"]["requests_share"] == pytest.approx(320 / total)
    assert seg["occasional"]["requests_share"] == pytest.approx(44 / total)
    assert seg["heavy"]["ratelimited_rate"] == pytest.approx(0.1) and seg["regular"]["ratelimited_rate"] == 0
    assert summary["without_client_id"]["requests"] == 1
    assert summary["thresholds"]["median_requests_per_active_day"] == 20
    top = summary["top_clients"][0]
    assert top["client"] == "heavy" and top["active_days"] == 8 and top["peak_requests_per_minute"] == 12
    assert "note" not in summary["thresholds"]


def test_log_report_breakdowns_cache_and_sampling() -> None:
    stats = LogStats("UTC")
    t = MONDAY + timedelta(hours=10)
    records = [
        rec(t, "a", cache="miss", input_tokens=100, output_tokens=50, latency_ms=900.0),
        rec(t, "a", cache="hit", input_tokens=None, output_tokens=None, latency_ms=100.0),
        rec(t, "a", cache="hit", input_tokens=None, output_tokens=None, latency_ms=100.0),
        rec(t, "b", stream=True, model="big", input_tokens=5000, sample_rate=0.5),  # stands for 2
        rec(t, "b", status=502, error_type="upstream_error", input_tokens=None, output_tokens=None),
    ]
    for r in records:
        stats.add(r)
    stats.finish()
    report = usagereport.from_log(stats)
    assert report["requests"] == 6
    assert report["breakdowns"]["stream"]["stream"]["requests"] == 2
    assert report["breakdowns"]["model"]["big"]["input_tokens"] == 10000
    assert report["breakdowns"]["prompt_band"]["4k-16k"]["share"] == pytest.approx(2 / 6)
    assert report["error_rate"] == pytest.approx(1 / 6)
    cache = report["cache"]
    assert cache["hit_ratio"] == pytest.approx(2 / 3)
    assert cache["upstream_tokens_saved"] == 300 and cache["latency_saved_ms_per_hit"] == 800
    assert (
        band(None) == "unknown" and band(255) == "<256" and band(256) == "256-1k" and band(70000) == ">=64k"
    )


def test_recommendation_arithmetic() -> None:
    assert quantile({1: 98, 50: 2}, 0.99) == 50 and quantile({}, 0.5) is None
    assert nice_up(87 * 1.25) == 110 and nice_up(0.2) == 1 and nice_up(152133 * 1.25) == 200000
    assert refused_share({10: 9, 30: 1}, 20) == pytest.approx(10 / 120)
    limit = guard_limit({2: 1000, 40: 10}, 3)
    assert refused_share({2: 1000, 40: 10}, limit) <= 0.01 and refused_share({2: 1000, 40: 10}, limit - 1) > 0
    assert merge_patch({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"c": [2]}, "d": None}) == {
        "a": {"b": 1, "c": [2]}
    }


def bunched_log(seed: int = 3) -> list[dict[str, Any]]:
    """Four hours of one tier: three clients sending bursts of 3-8 requests inside half a second at random
    times, ten sending one request at a time at random, latencies 50 ms to 20 s, lines in end-time order."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(13):
        t = 0.0
        while t < 4 * 3600:
            t += float(rng.exponential(40.0 if c < 3 else 90.0))
            burst = int(rng.integers(3, 9)) if c < 3 else 1
            for i in range(burst):
                arrival = t + 0.5 * i / burst
                latency = float(rng.uniform(50, 20000))
                when = MONDAY + timedelta(seconds=arrival + latency / 1000)
                out.append(rec(when, f"client{c}", latency_ms=round(latency, 3),
                               input_tokens=int(rng.integers(50, 3000)), output_tokens=0))  # fmt: skip
    return sorted(out, key=lambda r: str(r["time"]))


def replayed_share(
    records: list[dict[str, Any]],
    limit: int,
    kind: gcra.Kind,
    per_client: bool,
    tier: str = "team",
    by_count: bool = False,
) -> float:
    """The share of ``kind`` the proxy's own limiter refuses at ``limit`` in ``tier``, replayed at each
    request's arrival (its end time minus its latency), per (tier, client) as the proxy keys a client's
    limiter, or for the tier as a whole; ``by_count``: the share of the requests (carrying tokens) refused,
    not of the units."""
    arrivals = sorted(
        (datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp() - r["latency_ms"] / 1000,
         (r["tier"], r["client"]) if per_client else r["tier"], r["input_tokens"] + r["output_tokens"])
        for r in records
    )  # fmt: skip
    tats: dict[Any, float] = {}
    sent = refused = 0.0
    for at, who, tokens in arrivals:
        if (who[0] if per_client else who) != tier:
            continue
        cost = 1.0 if kind == "requests" else float(tokens)
        if cost <= 0:
            continue
        ok, tat, _ = gcra.evaluate(tats.get(who, 0.0), at, gcra.LimitCheck(str(who), limit, cost, kind))
        weight = 1.0 if by_count else cost
        sent += weight
        if ok:
            tats[who] = tat
        else:
            refused += weight
    return refused / sent


def test_limits_are_priced_by_replaying_the_log_through_the_proxys_limiter() -> None:
    """Bunched clients: counted per minute a limit looks safe, enforced as a steady rate with one second's
    burst it refuses many times more. Every tier and per-client limit, replayed here through the proxy's
    own GCRA at the log's arrival times, refuses at most 1 % and what the reasoning says; the limit one
    step smaller on the priced grid refuses more than 1 % (the limit is not padded)."""
    records = bunched_log()
    stats = LogStats("UTC")
    for r in records:
        stats.add(dict(r))
    stats.finish()
    items = {i["path"]: i for i in usagereport.from_log(stats)["recommendations"]["recommendations"]}
    checked = 0
    cases: list[tuple[str, gcra.Kind, bool]] = [
        ("tiers[team].perClient.requestsPerMinute", "requests", True),
        ("tiers[team].perClient.tokensPerMinute", "tokens", True),
        ("tiers[team].requestsPerMinute", "requests", False),
        ("tiers[team].tokensPerMinute", "tokens", False),
    ]
    for path, kind, per_client in cases:
        item = items[f"spec.rateLimits.{path}"]
        limit = item["value"]
        share = replayed_share(records, limit, kind, per_client)
        said = float(item["reason"].rsplit("it would have refused ", 1)[1].split("%")[0]) / 100
        assert share <= 0.01 and said == pytest.approx(share, abs=5e-5), (path, limit, share, item["reason"])
        smaller = int(pacing.GRID[np.searchsorted(pacing.GRID, limit) - 1])
        if "raised to refuse at most 1%" in item["reason"]:
            assert replayed_share(records, smaller, kind, per_client) > 0.01, (path, smaller)
            checked += 1
    assert checked >= 2  # the bunching made at least the per-client limits rise above the per-minute p99


def test_a_client_in_two_tiers_keeps_its_limiter_in_each() -> None:
    """The proxy keys a client's limiter by tier and client: a client whose every third request goes to
    another tier (a tier header) keeps its debt in each. The printed share is the replay's."""
    records = bunched_log(5)
    for i, r in enumerate(records):
        if r["client"] in ("client0", "client1") and i % 3 == 0:
            r["tier"] = "other"
    stats = LogStats("UTC")
    for r in records:
        stats.add(dict(r))
    stats.finish()
    items = {i["path"]: i for i in usagereport.from_log(stats)["recommendations"]["recommendations"]}
    for tier in ("team",):  # the clients switching send most of their requests here
        item = items[f"spec.rateLimits.tiers[{tier}].perClient.requestsPerMinute"]
        said = float(item["reason"].rsplit("it would have refused ", 1)[1].split("%")[0]) / 100
        share = replayed_share(records, item["value"], "requests", True, tier)
        assert said == pytest.approx(share, abs=5e-5) and share <= 0.01, (tier, item)


def test_logs_concatenated_out_of_order_are_priced_per_minute_and_say_why() -> None:
    """Two pods' logs appended one after the other (the second starts hours before the first ends): the
    tier's order cannot be replayed, so its limits are counted per minute and the reasoning says why;
    each client's own requests are still in order, so the per-client limits are replayed exactly."""
    records = bunched_log()
    first = [r for r in records if r["client"] < "client5"]
    second = [r for r in records if r["client"] >= "client5"]
    stats = LogStats("UTC")
    for r in (*first, *second):
        stats.add(dict(r))
    stats.finish()
    items = {i["path"]: i for i in usagereport.from_log(stats)["recommendations"]["recommendations"]}
    for path in ("tiers[team].requestsPerMinute", "tiers[team].tokensPerMinute"):
        reason = items[f"spec.rateLimits.{path}"]["reason"]
        assert "arrived more than 15 minutes out of time order" in reason, reason
        assert "give each pod's log as its own file" in reason and "it would have refused" not in reason
    item = items["spec.rateLimits.tiers[team].perClient.requestsPerMinute"]
    said = float(item["reason"].rsplit("it would have refused ", 1)[1].split("%")[0]) / 100
    assert said == pytest.approx(replayed_share(records, item["value"], "requests", True), abs=5e-5)


def test_one_huge_request_does_not_make_a_token_limit_that_refuses_everyone_after_it_look_harmless() -> None:
    """A request of 10 million tokens first: any token limit that admits it is in debt for hours after,
    refusing the ordinary requests behind it, while the tokens it admitted make its refused share of tokens
    look small. The limit chosen refuses at most 1 % of the requests that carry tokens as well."""
    records = bunched_log()
    giant = rec(MONDAY - timedelta(seconds=1), "client0", input_tokens=10_000_000, output_tokens=0)
    records = [giant, *records]
    stats = LogStats("UTC")
    for r in records:
        stats.add(dict(r))
    stats.finish()
    items = {i["path"]: i for i in usagereport.from_log(stats)["recommendations"]["recommendations"]}
    for path, per_client in (
        ("tiers[team].tokensPerMinute", False),
        ("tiers[team].perClient.tokensPerMinute", True),
    ):
        item = items[f"spec.rateLimits.{path}"]
        limit = item["value"]
        tokens = replayed_share(records, limit, "tokens", per_client)
        requests = replayed_share(records, limit, "tokens", per_client, by_count=True)
        assert tokens <= 0.01 and requests <= 0.01, (path, limit, tokens, requests)
        said = float(item["reason"].rsplit("(", 1)[1].split("%")[0]) / 100
        assert said == pytest.approx(requests, abs=5e-5), item["reason"]


def test_a_tier_out_of_order_is_priced_per_minute_and_the_others_are_replayed() -> None:
    """A quiet tier whose second pod's lines come after everything else (a concatenation): that tier's
    limits are counted per minute, saying why; the busy tier in time order is still replayed exactly,
    and so are the quiet tier's clients (each one's own requests are in order)."""
    records = bunched_log()
    quiet = [
        rec(MONDAY + timedelta(minutes=2 * i, seconds=7), f"q{i % 4}", tier="quiet", latency_ms=100.0)
        for i in range(110)
    ]
    late = [r for r in quiet if r["client"] in ("q2", "q3")]
    stream = sorted([*records, *(r for r in quiet if r not in late)], key=lambda r: str(r["time"])) + late
    stats = LogStats("UTC")
    for r in stream:
        stats.add(dict(r))
    stats.finish()
    items = {i["path"]: i for i in usagereport.from_log(stats)["recommendations"]["recommendations"]}
    reason = items["spec.rateLimits.tiers[quiet].requestsPerMinute"]["reason"]
    assert "of the tier's requests arrived more than 15 minutes out of time order" in reason, reason
    item = items["spec.rateLimits.tiers[team].requestsPerMinute"]
    said = float(item["reason"].rsplit("it would have refused ", 1)[1].split("%")[0]) / 100
    assert said == pytest.approx(replayed_share(records, item["value"], "requests", False), abs=5e-5)


def test_a_time_with_bad_seconds_changes_nothing() -> None:
    stats = LogStats("UTC")
    stats.add(rec(MONDAY))
    for seconds in ("4x.100", "99.000"):
        with pytest.raises(ValueError):
            stats.add(rec(MONDAY) | {"time": f"2025-03-03T00:01:{seconds}Z"})
    stats.finish()
    assert stats.requests == 1 and sum(t.requests for t in stats.breakdown.values()) == 1
    for seconds in (
        "+1.000",
        " 1.000",
        "-0.000",
        "60.500",
        "\u0660\u0661.000",
    ):  # the reader refuses them first
        assert problem(rec(MONDAY) | {"time": f"2025-03-03T00:01:{seconds}Z"}) == BAD_TIME, seconds
    assert stats.last == rec(MONDAY)["time"]


def test_a_few_sampled_lines_are_left_out_of_the_replay_not_the_whole_log() -> None:
    """Sampling switched on for the last line only: the replay prices the rest, and the note says which
    requests it left out (before, one sampled line turned the replay off for the whole log)."""
    records = bunched_log()
    stats = LogStats("UTC")
    for r in records[:-1]:
        stats.add(dict(r))
    stats.add(records[-1] | {"sample_rate": 0.5})
    stats.finish()
    report = usagereport.from_log(stats)
    items = {i["path"]: i for i in report["recommendations"]["recommendations"]}
    item = items["spec.rateLimits.tiers[team].perClient.requestsPerMinute"]
    said = float(item["reason"].rsplit("it would have refused ", 1)[1].split("%")[0]) / 100
    assert said == pytest.approx(replayed_share(records[:-1], item["value"], "requests", True), abs=5e-5)
    assert any(
        "the 2 requests on sampled lines are left out of the limits' replay" in n for n in report["notes"]
    )


def test_a_sampled_log_prices_limits_per_minute_and_says_so() -> None:
    stats = LogStats("UTC")
    for r in bunched_log():
        stats.add(r | {"sample_rate": 0.5})
    stats.finish()
    items = {i["path"]: i for i in usagereport.from_log(stats)["recommendations"]["recommendations"]}
    reason = items["spec.rateLimits.tiers[team].perClient.requestsPerMinute"]["reason"]
    assert (
        "counted per minute (the log is sampled" in reason and "steady rate with one second's burst" in reason
    )
    assert "replayed" not in reason


def route_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "manifests" / "examples" / "minimal.yaml").read_text())
    doc["spec"]["rateLimits"] = {
        "tiers": [{"name": "team", "priority": 10, "apiKeysSecretRef": {"name": "keys", "key": "team"}}],
        "schedules": [
            {"name": "weekend", "days": ["Sat"], "start": "00:00", "end": "12:00", "multiplier": 2}
        ],
    }
    return doc


def test_patch_keeps_the_route_valid_and_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "log", segment_log())
    route = tmp_path / "route.yaml"
    route.write_text(yaml.safe_dump(route_doc()))
    assert main(["report", "--access-log", str(log), "--route-file", str(route), "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    rec_ = report["recommendations"]
    patch = rec_["patch"]
    tier = patch["spec"]["rateLimits"]["tiers"][0]
    assert tier["apiKeysSecretRef"] == {"name": "keys", "key": "team"} and tier["priority"] == 10
    assert tier["perClient"]["requestsPerMinute"] >= 1
    names = [s["name"] for s in patch["spec"]["rateLimits"]["schedules"]]
    assert names[0] == "weekend"
    merged = merge_patch(route_doc(), patch)
    LLMRoute.from_object(merged)
    (tmp_path / "patched.yaml").write_text(yaml.safe_dump(merged))
    assert main(["validate", str(tmp_path / "patched.yaml")]) == 0
    text = patchyaml.render(patch, rec_["recommendations"])
    assert yaml.safe_load(text) == patch
    assert "requestsPerMinute: " in text and "# 1.25 x p99 of the tier's requests per minute" in text


def test_report_reads_stdin_and_says_what_it_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in segment_log()) + b"garbage\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    assert main(["report", "--access-log", "-", "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input"]["skipped"] == {"not an access-log line": 1}
    assert report["clients"]["top_clients"][0]["client"] == "heavy"
    plot = tmp_path / "heat.png"
    log = write_log(tmp_path / "log", segment_log())
    assert main(["report", "--access-log", str(log), "--plot", str(plot), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "heavy" in out and "peak hours:" in out and "Mon" in out
    assert main(["report", "--access-log", str(tmp_path / "missing"), "--quiet"]) == 2
    assert main(["report", "--prometheus", "http://127.0.0.1:1"]) == 2
    assert "--route NAMESPACE/NAME" in capsys.readouterr().err


def test_bad_fields_are_skipped_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = segment_log()
    bad = [
        rec(MONDAY, "x", time="yesterday at noon"),
        rec(MONDAY, "x", input_tokens="many"),
        rec(MONDAY, "x", input_tokens=1.5),
        rec(MONDAY, "x", latency_ms="slow"),
        rec(MONDAY, "x", status=[200]),
    ]
    log = write_log(tmp_path / "log", good + bad)
    assert main(["report", "--access-log", str(log), "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input"]["skipped"] == {"bad time or field": 5}
    assert report["requests"] == len(good)


def test_prometheus_auth_options_follow_the_operators(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from llmroute.cli import report as cli_report

    monkeypatch.setenv("LLMROUTE_PROMETHEUS_BEARER_TOKEN_FILE", "/var/run/token")
    monkeypatch.setenv("LLMROUTE_PROMETHEUS_HEADERS", "X-Scope-OrgID=team-a")
    parser = argparse.ArgumentParser()
    cli_report.add_parser(parser.add_subparsers())
    args = parser.parse_args(["report", "--prometheus", "https://p", "--route", "ns/r", "--header", "X-A=1"])
    auth = cli_report._auth(args)
    assert auth.bearer_token_file == "/var/run/token" and not auth.insecure_skip_verify
    assert dict(auth.headers) == {"X-Scope-OrgID": "team-a", "X-A": "1"}
    args = parser.parse_args(["report", "--prometheus", "https://p", "--header", "nonsense"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        cli_report._auth(args)
