"""The usage report on input nobody planned for: wrong-typed fields, times with offsets, records out of
time order, logs of nothing but bad lines, sampling rates that overflow, and a reader that goes away."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmroute.cli.main import main
from llmroute.cli.report import finite
from llmroute.sim import hourly
from llmroute.sim.accesslog import ReadStats, read
from llmroute.sim.logstats import LogStats
from llmroute.sim.recommend import ObservedUsage, recommend
from llmroute.sim.report import analyse, render
from llmroute.sim.trace import Trace
from llmroute.spec.accesslog import canonical_time, problem
from tests.unit.test_usage_report import MONDAY, ROOT, rec, segment_log, write_log

BAD_FIELDS: dict[str, dict[str, Any]] = {
    "v": {"v": "1"},
    "tier": {"tier": 5},
    "client": {"client": 12345},
    "endpoint": {"endpoint": ["/v1/chat/completions"]},
    "model": {"model": {"name": "m"}},
    "cache": {"cache": 1},
    "stream": {"stream": "true"},
    "status": {"status": "200"},
    "input_tokens": {"input_tokens": True},
    "output_tokens": {"output_tokens": -5},
    "latency_ms": {"latency_ms": -1.0},
    "sample_rate": {"sample_rate": 0},
    "time": {"time": "2025-03-03T05:00:00"},  # no offset: not the contract's UTC time
}


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["report", *args, "--json", "--quiet"]) == 0
    out = capsys.readouterr().out
    report: dict[str, Any] = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in --json"))
    return report


@pytest.mark.parametrize("field", sorted(BAD_FIELDS))
def test_problem_names_the_wrong_typed_field(field: str) -> None:
    said = problem(rec(MONDAY) | BAD_FIELDS[field])
    assert said is not None and said.startswith(f"{field}: ")
    assert problem(rec(MONDAY)) is None
    assert problem(rec(MONDAY, None, input_tokens=None, status=None, stream=None, sample_rate=None)) is None


def test_wrong_typed_fields_are_skipped_counted_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = segment_log()
    bad = [rec(MONDAY, "x") | patch for patch in BAD_FIELDS.values()]
    bad += [
        rec(MONDAY, "x", v=None),
        rec(MONDAY, "x", input_tokens=2**64 - 1),
        rec(MONDAY, "x", sample_rate=2),
    ]
    log = write_log(tmp_path / "log", good + bad)
    report = run_json(capsys, "--access-log", str(log))
    assert report["requests"] == len(good)
    assert report["input"]["skipped"] == {"bad time or field": len(bad)}
    fields = report["input"]["skipped_fields"]
    assert fields["v"] == 2 and fields["input_tokens"] == 2 and fields["sample_rate"] == 2
    assert set(fields) == set(BAD_FIELDS)
    assert "(v: " in report["input"]["skipped_examples"]["bad time or field"]


def test_times_with_an_offset_or_without_milliseconds_are_read_as_utc(tmp_path: Path) -> None:
    a = rec(MONDAY + timedelta(hours=5)) | {"time": "2025-03-03T07:00:00.500+02:00"}
    b = rec(MONDAY + timedelta(hours=5)) | {"time": "2025-03-03T05:00:00Z"}
    c = rec(MONDAY + timedelta(hours=5, seconds=1))
    stats = ReadStats()
    out = list(read([str(write_log(tmp_path / "a", [b, a])), str(write_log(tmp_path / "c", [c]))], stats))
    assert [r["time"] for r in out] == [
        "2025-03-03T05:00:00.000Z",
        "2025-03-03T05:00:00.500Z",
        "2025-03-03T05:00:01.000Z",
    ]
    assert stats.skipped == {}


def test_records_out_of_time_order_keep_each_clients_minutes() -> None:
    # one request a minute for an hour, shuffled within ten-minute blocks (as a concatenation of pods'
    # logs or a shipper's export may come)
    records = [rec(MONDAY + timedelta(minutes=m, seconds=30), "c") for m in range(60)]
    rng = random.Random(3)
    blocks = [records[i : i + 10] for i in range(0, 60, 10)]
    for block in blocks:
        rng.shuffle(block)
    stats = LogStats("UTC")
    for r in [r for block in blocks for r in block]:
        stats.add(r)
    stats.finish()
    client = stats.clients["c"]
    assert client.peak_minute == 1 and client.per_minute == {1: 60}
    assert stats.late == 0


def test_records_far_behind_their_client_are_counted_and_noted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day1 = [rec(MONDAY + timedelta(hours=2, minutes=m), "c") for m in range(30)]
    day0 = [rec(MONDAY + timedelta(minutes=m), "c") for m in range(30)]  # a second pod's log, cat-ed after
    stats = LogStats("UTC")
    for r in day1 + day0:
        stats.add(r)
    stats.finish()
    assert stats.requests == 60 and stats.clients["c"].per_minute == {1: 60}
    assert stats.late == 30
    log = write_log(tmp_path / "log", day1 + day0)
    report = run_json(capsys, "--access-log", str(log))
    assert any("out of time order" in n for n in report["notes"])


def test_the_text_report_says_what_it_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write_log(tmp_path / "log", [*segment_log(), rec(MONDAY, "x", input_tokens="many")])
    with log.open("ab") as f:
        f.write(b"garbage\n")
    assert main(["report", "--access-log", str(log), "--quiet"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("input:"))
    assert "2 skipped" in line and "not an access-log line 1" in line and f"{log}:" in line
    assert "input_tokens" in line


def test_a_log_of_only_bad_lines_says_what_was_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log"
    log.write_bytes(b"not json\n[1, 2]\n\n")
    assert main(["report", "--access-log", str(log), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no requests" in err and "3 lines" in err and "not an access-log line 2" in err


def test_json_never_holds_nan_or_infinity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a line standing for 10^300 requests would overflow every sum: the rate is not one a proxy writes
    records = [rec(MONDAY + timedelta(minutes=m), "c", input_tokens=2**52) for m in range(3)]
    records.append(rec(MONDAY, "c", sample_rate=1e-300, input_tokens=2**52))
    report = run_json(capsys, "--access-log", str(write_log(tmp_path / "log", records)))
    assert report["requests"] == 3 and report["input"]["skipped_fields"] == {"sample_rate": 1}
    inf = float("inf")
    assert finite({"a": [inf, float("nan"), 1.5], "b": (-inf,), "c": "x"}) == {
        "a": [None, None, 1.5],
        "b": [None],
        "c": "x",
    }


def test_a_reader_that_goes_away_ends_the_report_quietly(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log", segment_log())
    cli = Path(sys.executable).parent / "llmroute"
    proc = subprocess.Popen(
        [str(cli), "report", "--access-log", str(log), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader left before the report was written (`| head` that is done)
    with proc:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141) and "Traceback" not in err


def test_one_spike_does_not_make_a_daily_peak() -> None:
    # a week of a flat 100 requests an hour, and one burst of 2,000 on Thursday at 11:00
    per_hour = np.full(7 * 24, 100.0)
    per_hour[3 * 24 + 11] = 2000.0
    prof = hourly.profile(hourly.HourlySeries(MONDAY, per_hour, per_hour * 10), "UTC")
    assert len(prof["peak_hours"]) == 24 and prof["quiet_hours"] == []
    assert prof["hourly_mean_requests"][11] == pytest.approx(100 + 1900 / 7)  # the mean still shows it
    obs = ObservedUsage(prof)
    rec_ = recommend(obs)
    assert all(r["value"] is None for r in rec_["recommendations"])
    # a shape that repeats every day is still found, and so is a two-day log's (median of two = mean)
    daily = np.array([300.0 if 9 <= h % 24 < 17 else 100.0 for h in range(7 * 24)])
    daily[3 * 24 + 2] = 5000.0
    prof = hourly.profile(hourly.HourlySeries(MONDAY, daily, daily), "UTC")
    assert sorted(prof["peak_hours"]) == list(range(9, 17)) and prof["peak_to_quiet_ratio"] == 3.0


def test_a_log_with_only_nights_gets_its_daytime_off_peak_window() -> None:
    # traffic 22:00-06:00 only: the quiet hours carry nothing, which is the least flat shape there is
    nights = np.array([50.0 if h % 24 >= 22 or h % 24 < 6 else 0.0 for h in range(7 * 24)])
    prof = hourly.profile(hourly.HourlySeries(MONDAY, nights, nights), "UTC")
    assert sorted(prof["quiet_hours"]) == list(range(6, 22)) and prof["peak_to_quiet_ratio"] is None
    out = recommend(ObservedUsage(prof))
    (window,) = out["patch"]["spec"]["rateLimits"]["schedules"]
    assert (window["start"], window["end"], window["multiplier"]) == ("06:00", "22:00", 4.0)
    reason = next(r["reason"] for r in out["recommendations"] if r["value"] == 4.0)
    assert "no traffic" in reason


def test_a_short_trace_never_calls_an_hour_both_peak_and_trough() -> None:
    # an hour of minutes across two clock hours (as the Azure conversation trace): 18:15-19:14
    start = MONDAY + timedelta(hours=18, minutes=15)
    minutes = np.array([350.0] * 45 + [250.0] * 15)
    report = analyse(Trace("short", start, minutes), "UTC")
    assert report["peak_hours"] == [18] and report["trough_hours"] == [19]
    one = analyse(Trace("one", MONDAY, np.full(30, 5.0)), "UTC")  # half an hour: no hour is a peak yet
    assert one["peak_hours"] == [] and one["trough_hours"] == [] and one["peak_to_trough_ratio"] is None


@pytest.mark.parametrize(
    ("minutes", "note"),
    [
        (np.full(3, 12_000.0), "fewer than 60 minutes with data: no peak or trough hours"),
        (np.array([5.0] * 20 + [np.nan] * 200 + [5.0] * 20), "fewer than 60 minutes with data"),
        (np.zeros(600), "no requests in the minutes with data: no peak or trough hours"),
    ],
    ids=["3 minutes", "40 known minutes in 240", "all zero"],
)
def test_no_peak_hour_is_claimed_from_too_little_or_no_traffic(minutes: np.ndarray, note: str) -> None:
    report = analyse(Trace("t", MONDAY, minutes), "UTC")
    assert report["peak_hours"] == [] and report["trough_hours"] == [], report
    assert report["peak_to_trough_ratio"] is None and any(note in n for n in report["notes"])
    text = render(report)
    assert "peak hours:   none" in text and "trough hours: none" in text


def test_a_gap_is_not_read_as_a_quiet_hour_around_a_minute() -> None:
    # a flat 100 a minute with two hours missing in the middle: no minute stands above its hour
    flat = np.array([100.0] * 120 + [np.nan] * 120 + [100.0] * 120)
    ratio = analyse(Trace("gap", MONDAY, flat), "UTC")["minute_vs_centred_hour"]
    assert ratio == {"p99": pytest.approx(1.0), "max": pytest.approx(1.0)}


def test_a_heat_map_without_a_full_hour_says_so() -> None:
    lines = hourly.render_heatmap([[None] * 24 for _ in range(7)], "requests")
    assert lines == ["requests per hour, weekday x local hour: no full clock hour of data, no heat map"]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--top", "-1"), ("--days", "0"), ("--heavy-factor", "0.5"), ("--occasional-share", "1.5"),
     ("--occasional-requests-per-day", "-1"), ("--heavy-factor", "nan")],
)  # fmt: skip
def test_out_of_range_options_are_refused_naming_them(
    option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write_log(tmp_path / "log", segment_log())
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--access-log", str(log), option, value, "--quiet"])
    assert exit_.value.code == 2 and option in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_gzip_keeps_what_was_read_and_says_where_it_ends(
    damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [rec(MONDAY + timedelta(seconds=i), f"c{i % 7}") for i in range(20000)]
    whole = write_log(tmp_path / "whole", records, compress=True).read_bytes()
    cut = whole[: len(whole) // 2]
    tail = bytes(range(256)) * 40 if damage == "corrupt" else b""
    log = tmp_path / "log.gz"
    log.write_bytes(cut + tail)
    report = run_json(capsys, "--access-log", str(log))
    assert 0 < report["requests"] < len(records)
    (reason,) = [r for r in report["input"]["skipped"] if r != "malformed JSON"]
    assert reason == "gzip stream ends early or is corrupt"
    assert report["input"]["skipped_examples"][reason].startswith(f"{log}:")


def test_a_log_of_several_routes_is_read_for_one_or_says_it_mixes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours = segment_log()  # route ns/r
    other = [rec(MONDAY + timedelta(minutes=m), "o", route="ns/other") for m in range(100)]
    log = write_log(tmp_path / "log", sorted(ours + other, key=lambda r: r["time"]))
    mixed = run_json(capsys, "--access-log", str(log))
    assert mixed["requests"] == len(ours) + len(other)
    assert mixed["routes"] == {"ns/r": len(ours), "ns/other": len(other)}
    assert any("2 routes" in n for n in mixed["notes"])
    one = run_json(capsys, "--access-log", str(log), "--route", "ns/r")
    assert one["requests"] == len(ours) and one["input"]["skipped"] == {"another route": len(other)}
    assert not any("routes" in n for n in one["notes"])
    route = tmp_path / "route.yaml"  # a manifest of a route the log does not hold: said, not guessed
    route.write_text((ROOT / "manifests" / "examples" / "minimal.yaml").read_text())
    named = run_json(capsys, "--access-log", str(log), "--route", "ns/r", "--route-file", str(route))
    assert any("route file is chat" in n for n in named["notes"])


def test_limits_are_not_read_from_a_handful_of_minutes() -> None:
    flat = hourly.profile(hourly.HourlySeries(MONDAY, np.full(24, 60.0), np.full(24, 600.0)), "UTC")
    few = ObservedUsage(flat, tier_requests={"team": {9: 1}}, client_requests={"team": {3: 2}})
    out = recommend(few)
    assert "rateLimits" not in out["patch"]["spec"]
    said = {r["path"]: r["reason"] for r in out["recommendations"] if r["value"] is None}
    assert "1 minute" in said["spec.rateLimits.tiers[team].requestsPerMinute"]
    assert "2 minutes" in said["spec.rateLimits.tiers[team].perClient.requestsPerMinute"]
    enough = ObservedUsage(flat, tier_requests={"team": {9: 40}}, client_requests={"team": {3: 40}})
    tier = recommend(enough)["patch"]["spec"]["rateLimits"]["tiers"][0]
    assert tier["requestsPerMinute"] == 12 and tier["perClient"]["requestsPerMinute"] == 5


def test_daily_windows_need_a_day_of_data() -> None:
    busy = np.array([10.0, 10.0, 90.0, 90.0, 90.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    prof = hourly.profile(hourly.HourlySeries(MONDAY, busy, busy), "UTC")
    out = recommend(ObservedUsage(prof), None)
    said = {r["path"]: r["reason"] for r in out["recommendations"] if r["value"] is None}
    assert "12 hours" in said["spec.rateLimits.schedules[off-peak]"]
    assert "12 hours" in said["spec.scaling.schedules[peak]"]
    assert out["patch"]["spec"] == {}


def test_lines_dated_far_off_neither_stretch_nor_change_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clock reset to 1970, a year written with three digits, a sentinel year 9999 and an offset that
    takes a time before year 1: each once in a week of good lines. Before, one line in 9999 spread the
    report over eight thousand years (minutes and a gigabyte) and one with an offset raised
    ``OverflowError``. Now the future line and the impossible one are skipped and named, the two dated
    decades back are left out of the time-of-day picture with a note, and the report is the clean one."""
    good = segment_log()
    odd = [
        rec(MONDAY) | {"time": "1970-01-01T00:00:00Z"},
        rec(MONDAY) | {"time": "0999-03-02T16:00:00.123Z"},
        rec(MONDAY) | {"time": "9999-03-02T16:00:00.123Z"},
        rec(MONDAY) | {"time": "0001-01-01T00:00:00+01:00"},
    ]
    clean = run_json(capsys, "--access-log", str(write_log(tmp_path / "clean", good)))
    mixed = run_json(capsys, "--access-log", str(write_log(tmp_path / "mixed", [odd[0], *good, *odd[1:]])))
    assert mixed["input"]["skipped"] == {"time in the future": 1, "bad time or field": 1}
    assert mixed["input"]["skipped_fields"] == {"time": 1}
    for key in ("profile", "days_spanned"):
        assert mixed[key] == clean[key], key
    assert mixed["recommendations"]["patch"] == clean["recommendations"]["patch"]
    assert mixed["first"] == clean["first"][:16] + "Z" and mixed["last"] == clean["last"][:16] + "Z"
    assert mixed["notes"][0].startswith("2 requests dated more than 31 days away from the log's main")
    assert "0999-03-02T16:00:00.123Z" in mixed["notes"][0]  # the earliest line, its year in four digits
    assert canonical_time("0999-03-02T18:00:00+02:00") == "0999-03-02T16:00:00.000Z"  # four-digit years
    assert canonical_time("0001-01-01T00:00:00+01:00") is None  # before year 1 in UTC
    assert mixed["notes"][1].startswith("1 request came more than 15 minutes out of time order")
