"""The simulator on small synthetic traces whose right answer is known, and its command line."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from llmroute.cli.main import main
from llmroute.sim.capacity import CapacityModel, PolicyMetrics, measure, ready_replicas
from llmroute.sim.frontier import FrontierPoint, compare, interpolate
from llmroute.sim.policies import run_oracle, run_static
from llmroute.sim.run import SimulationSettings, default_route, load_route, simulate
from llmroute.sim.synthetic import SUITE, synthetic
from llmroute.sim.trace import Trace, default_trace, demand_rps, read_trace

START = datetime(2025, 3, 3, tzinfo=UTC)
MODEL = CapacityModel(capacity_rps=50.0, startup_seconds=60.0)


def trace_of(rps: list[float] | np.ndarray, name: str = "synthetic") -> Trace:
    return Trace(name, START, np.asarray(rps, dtype=np.float64) * 60.0)


def write_trace(path: Path, requests: list[float], client: bool = False) -> Path:
    with path.open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(
            ["timestamp", "client", "requests"]
            if client
            else ["timestamp", "requests", "input_tokens", "output_tokens"]
        )
        for i, r in enumerate(requests):
            stamp = f"2025-03-03T{i // 60:02d}:{i % 60:02d}:00Z"
            w.writerow([stamp, "c1", r] if client else [stamp, r, r * 100, r * 10])
    return path


@pytest.mark.parametrize(
    ("desired", "startup", "ready"),
    [
        ([2, 4, 4, 1, 3, 3], 60.0, [2, 2, 4, 1, 1, 3]),
        ([2, 4, 4, 1, 3, 3], 30.0, [2, 3, 4, 1, 2, 3]),
        ([2, 4, 4, 1, 3, 3], 0.0, [2, 4, 4, 1, 3, 3]),
        ([2, 4, 3, 3], 120.0, [2, 2, 2, 3]),  # scale-down removes the newest (not yet ready) first
    ],
)
def test_ready_replicas(desired: list[int], startup: float, ready: list[float]) -> None:
    assert ready_replicas(np.array(desired, dtype=np.int64), startup).tolist() == ready


def test_demand_scaling() -> None:
    t = trace_of([1.0, 2.0, 4.0])
    assert demand_rps(t, capacity_rps=50.0, peak_replicas=10).tolist() == [125.0, 250.0, 500.0]
    assert demand_rps(t, capacity_rps=50.0, peak_rps=8.0).tolist() == [2.0, 4.0, 8.0]
    assert demand_rps(t, capacity_rps=50.0).tolist() == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("demand", "startup", "desired"),
    [
        ([100.0, 260.0, 40.0], 60.0, [6, 6, 1]),
        ([100.0, 260.0, 40.0], 120.0, [6, 6, 1]),
        ([100.0, 260.0, 40.0], 600.0, [6, 6, 1]),  # a start-up longer than the trace
        ([40.0, 100.0], 3600.0, [2, 2]),
        ([260.0], 600.0, [6]),
    ],
)
def test_oracle_starts_replicas_ahead_on_short_traces(
    demand: list[float], startup: float, desired: list[int]
) -> None:
    route = default_route(50.0, 6)
    d = np.array(demand)
    assert run_oracle(route, d, CapacityModel(50.0, startup)).desired.tolist() == desired


@pytest.mark.parametrize(
    ("max_replicas", "peak_replicas", "capped"),
    [(None, 40.0, None), (30, 40.0, 30), (None, None, 10000)],  # the raw trace needs 80,000 replicas
)
def test_a_peak_above_max_replicas_is_said(
    max_replicas: int | None, peak_replicas: float | None, capped: int | None
) -> None:
    spec = None
    if max_replicas is not None:
        route = default_route(50.0, 10)
        spec = route.model_copy(
            update={"proxy": route.proxy.model_copy(update={"max_replicas": max_replicas})}
        )
    settings = SimulationSettings(peak_replicas=peak_replicas, frontier=False)
    result = simulate(trace_of([4e6, 2e6, 1e6]), spec, settings)
    said = [n for n in result.notes if "above the route's maxReplicas" in n]
    assert len(said) == (capped is not None), result.notes
    if capped is not None:
        assert result.metrics["static"].peak_replicas == capped and f"maxReplicas {capped}:" in said[0]


def test_oracle_and_static_know_the_answer() -> None:
    d = np.array([100.0, 100.0, 260.0, 90.0, 40.0])
    route = default_route(50.0, 6)
    oracle = run_oracle(route, d, MODEL)
    assert oracle.desired.tolist() == [2, 6, 6, 2, 1]  # started a minute ahead, gone at once
    assert measure(d, oracle.desired, MODEL)[0].under_minutes == 0
    assert run_static(route, d, MODEL).desired.tolist() == [6] * 5


def test_constant_load_is_served_at_the_target() -> None:
    result = simulate(trace_of([400.0] * 180), None, SimulationSettings(frontier=False))
    for name in ("llmroute", "hpa", "static", "oracle"):
        assert result.metrics[name].under_minutes == 0, name
    assert result.metrics["oracle"].replica_minutes == 8 * 180
    assert result.metrics["hpa"].replica_minutes == 10 * 180  # 400 / 40
    assert set(result.runs["llmroute"].desired[30:].tolist()) == {10}  # 400 / (40 x 1.1) -> 10
    assert result.metrics["llmroute"].scale_events == 0  # the cold-start margin never scales up on its own


def test_a_step_costs_every_causal_policy_exactly_two_minutes() -> None:
    load = [400.0] * 180 + [800.0] * 60
    result = simulate(trace_of(load), None, SimulationSettings(frontier=False))
    # minute 180 (nobody has seen it) and 181 (seen, but new replicas need 60 s) are short; then covered
    for name in ("llmroute", "hpa"):
        ready = result.ready[name] * 50.0
        short = [t for t in range(len(load)) if load[t] > ready[t] + 1e-9]
        assert short == [180, 181], name
    assert result.metrics["oracle"].under_minutes == 0
    assert result.metrics["static"].under_minutes == 0


def test_cut_trace_gives_the_same_decisions_up_to_the_cut() -> None:
    full = read_trace(default_trace()).head(3300)  # beyond two days: prediction may act at the end
    cut = full.head(3000)
    settings = SimulationSettings(
        policies=("llmroute", "hpa"), frontier=False
    )  # raw volumes: same demand in both
    a = simulate(full, None, settings)
    b = simulate(cut, None, settings)
    assert a.spec == b.spec or a.spec.scaling == b.spec.scaling
    for name in ("llmroute", "hpa"):
        assert a.runs[name].desired[:3000].tolist() == b.runs[name].desired.tolist()
    assert a.runs["llmroute"].reasons[:3000] == b.runs["llmroute"].reasons
    assert any("predictive acts" in r for r in b.runs["llmroute"].reasons[2900:])


def test_blank_minutes_hold_in_every_policy(tmp_path: Path) -> None:
    # 400 req/s, then 30 blank minutes (a collection gap), then 400 again: read as missing, nobody scales
    # down in the gap, the oracle holds the last known need, and the returning load is served at once
    path = tmp_path / "blank.csv"
    rows = ["timestamp,requests,input_tokens,output_tokens"]
    for i in range(240):
        stamp = f"2025-03-03T{i // 60:02d}:{i % 60:02d}:00Z"
        rows.append(f"{stamp},,," if 120 <= i < 150 else f"{stamp},24000,0,0")
    path.write_text("\n".join(rows) + "\n")
    trace = read_trace(path)
    assert np.isnan(trace.requests[120:150]).all() and trace.requests[150] == 24000.0
    result = simulate(trace, None, SimulationSettings(frontier=False))
    oracle = result.runs["oracle"].desired
    assert oracle[119:151].tolist() == [8] * 32  # 400 / 50, held through the gap
    for name in ("llmroute", "hpa"):
        desired = result.runs[name].desired
        assert desired[120:151].tolist() == [desired[119]] * 31, name
        assert desired[119] >= 10, name  # 400 / 40
    assert result.metrics["llmroute"].under_minutes == 0
    assert any("never scaling down without data" in r for r in result.runs["llmroute"].reasons[120:150])


SHEDDING_ROUTE = (
    "upstreams: [{name: a, url: 'http://a.invalid/v1', model: m}]\nproxy: {maxReplicas: 2}\n"
    "scaling: {metric: {targetPerReplica: 40}}\nrateLimits:\n  identity: {type: Header}\n"
    "  adaptiveShedding: {restoreAfterSeconds: 120}\n"
    "  tiers: [{name: gold, priority: 10, requestsPerMinute: 6000}, {name: free, requestsPerMinute: 1200}]\n"
)


@pytest.mark.parametrize(
    ("after", "restored"),
    [
        ([np.nan] * 20, False),  # a collection gap: no utilisation, nothing restored
        ([10.0] * 20, True),  # known calm load: restored after restoreAfterSeconds
    ],
)
def test_shedding_holds_through_missing_minutes(tmp_path: Path, after: list[float], restored: bool) -> None:
    (tmp_path / "r.yaml").write_text(SHEDDING_ROUTE)
    spec = load_route(tmp_path / "r.yaml")
    result = simulate(trace_of([200.0] * 20 + after), spec, SimulationSettings(policies=("llmroute",)))
    factors = result.runs["llmroute"].columns["limit_free_shed_factor"]
    assert factors[19] == 0.0  # shed entirely at maxReplicas with twice its capacity offered
    assert (factors[-1] == 1.0) is restored and (set(factors[20:]) == {0.0}) is not restored, factors


def test_cut_trace_with_blank_cells_gives_the_same_decisions() -> None:
    full = synthetic("blank_cells")
    cut_at = int(np.flatnonzero(np.isnan(full.requests))[0]) + 5  # inside the first gap
    settings = SimulationSettings(policies=("llmroute", "hpa", "oracle"), frontier=False)
    a = simulate(full.head(cut_at + 600), None, settings)
    b = simulate(full.head(cut_at), None, settings)
    assert a.spec.scaling == b.spec.scaling
    for name in ("llmroute", "hpa"):
        assert a.runs[name].desired[:cut_at].tolist() == b.runs[name].desired.tolist()
    assert a.runs["llmroute"].reasons[:cut_at] == b.runs["llmroute"].reasons


def test_synthetic_suite_is_fixed_by_its_seeds() -> None:
    for name in SUITE:
        a, b = synthetic(name), synthetic(name)
        assert np.array_equal(a.requests, b.requests, equal_nan=True), name
        assert a.minutes >= 1440 and np.nanmax(a.requests) > 0, name
    assert np.isnan(synthetic("blank_cells").requests).any()
    assert not np.array_equal(synthetic("surge_x3", 1).requests, synthetic("surge_x3", 2).requests)


def _point(u: float, rm: float, under: int) -> FrontierPoint:
    d = np.full(60, 10.0)
    metrics = measure(d, np.full(60, 1, dtype=np.int64), MODEL)[0]
    return FrontierPoint(u, type(metrics)(rm, under, 0.0, 2, 2.0, 1, 1.0))


def test_frontier_interpolation_and_checks() -> None:
    pts = [_point(0.6, 300.0, 0), _point(0.8, 200.0, 20), _point(0.9, 150.0, 60)]
    assert interpolate(pts, 250.0) == (10.0, True)
    assert interpolate(pts, 100.0) == (60.0, False)
    llm = type(pts[0].metrics)(250.0, 7, 0.0, 3, 3.0, 1, 1.0)
    oracle = type(pts[0].metrics)(190.0, 0, 0.0, 9, 9.0, 1, 1.0)
    comp = compare(pts, llm, oracle, 0.8)
    checks = {c.name: (round(c.value, 3), c.ok) for c in comp.checks}
    assert checks == {
        "under_provisioned_vs_hpa_same_cost": (0.7, True),
        "replica_minutes_vs_oracle": (1.316, True),
        "scale_events_vs_hpa_at_target": (1.5, True),
    }


def _metrics(rm: float, under: int, events: int) -> PolicyMetrics:
    return PolicyMetrics(rm, under, 0.0, events, events / 24.0, 1, 1.0)


# llmroute's (under-provisioned minutes, scale events), HPA's on every sweep point, oracle replica-minutes
# -> each check as (value in JSON, met, words of its note)
NO_RATIO = [
    (
        (7, 3),
        (10, 2),
        190.0,
        {"under": (0.7, True, None), "cost": (1.3158, True, None), "events": (1.5, True, None)},
    ),
    ((0, 3), (0, 2), 190.0, {"under": (None, True, "neither llmroute nor HPA at the same cost is")}),
    ((4, 3), (0, 2), 190.0, {"under": (None, False, "never under-provisioned, llmroute is 4 minute(s)")}),
    ((0, 0), (0, 0), 190.0, {"events": (None, True, "neither llmroute nor HPA(u=0.8) scales")}),
    ((0, 5), (0, 0), 190.0, {"events": (None, False, "HPA(u=0.8) never scales, llmroute does 5 time(s)")}),
    ((0, 0), (0, 0), 0.0, {"cost": (None, False, "the oracle runs no replica")}),
]


@pytest.mark.parametrize(("llm", "hpa", "oracle_rm", "expected"), NO_RATIO)
def test_frontier_checks_say_when_there_is_no_ratio(
    llm: tuple[int, int],
    hpa: tuple[int, int],
    oracle_rm: float,
    expected: dict[str, tuple[object, bool, str]],
) -> None:
    pts = [
        FrontierPoint(u, _metrics(rm, hpa[0], hpa[1])) for u, rm in ((0.6, 300.0), (0.8, 200.0), (0.9, 150.0))
    ]
    comp = compare(pts, _metrics(250.0, *llm), _metrics(oracle_rm, 0, 9), 0.8)
    checks = comp.as_dict()["checks"]
    names = {"under": "under_provisioned_vs_hpa_same_cost", "cost": "replica_minutes_vs_oracle"}
    for key, (value, ok, note) in expected.items():
        check = checks[names.get(key, "scale_events_vs_hpa_at_target")]
        assert (check["value"], check["ok"]) == (value, ok), key
        assert (note is None and "note" not in check) or note in check["note"], check
    json.dumps(comp.as_dict(), allow_nan=False)  # JSON has no Infinity


@pytest.mark.parametrize(
    ("rps", "peak_rps", "notes"),
    [
        ([np.nan, 400.0, 200.0], None, ["peak demand 400.0 req/s"]),  # a blank first minute is no peak of 0
        ([np.nan, 400.0, 200.0], 100.0, ["peak demand 100.0 req/s"]),
        ([0.0, 0.0, np.nan], 100.0, ["no minute of the trace has traffic", "peak demand 0.0 req/s"]),
    ],
)
def test_simulation_notes_give_the_peak_of_known_minutes(
    rps: list[float], peak_rps: float | None, notes: list[str]
) -> None:
    result = simulate(trace_of(rps), None, SimulationSettings(peak_rps=peak_rps, frontier=False))
    assert len(result.notes) == len(notes)
    assert all(want in got for want, got in zip(notes, result.notes, strict=True)), result.notes


@pytest.mark.parametrize(("known", "said"), [(3, True), (59, True), (60, False), (600, False)])
def test_a_comparison_on_under_an_hour_of_data_says_it_means_little(known: int, said: bool) -> None:
    rps = [100.0 + 50.0 * (i % 7) for i in range(known)] + [np.nan] * 30  # blank minutes are no data
    result = simulate(trace_of(rps), None, SimulationSettings())
    short = [n for n in result.notes if "too few minutes" in n]
    assert bool(short) is said, result.notes
    assert not short or f"only {known} minute(s) with data" in short[0]


def test_simulate_prints_no_ratio_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a constant load: neither HPA nor llmroute (its cold-start margin never scales up on its own) scales
    trace = write_trace(tmp_path / "flat.csv", [24000.0] * 180)
    argv = ["simulate", "--trace", str(trace), "--out", str(tmp_path / "o.csv"), "--quiet"]
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    events = summary["frontier"]["checks"]["scale_events_vs_hpa_at_target"]
    assert events["value"] is None and "neither llmroute nor HPA(u=0.8) scales" in events["note"]
    assert events["ok"] is True
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "inf" not in text and re.search(r"scale events/h vs HPA\(u=0.8\) +n/a .*neither", text), text
    assert "(3.0 hours)" in text


def test_read_trace_fills_gaps_and_sums_clients(tmp_path: Path) -> None:
    path = tmp_path / "gap.csv"
    path.write_text("timestamp,requests\n2025-03-03T00:00:00Z,5\n2025-03-03T00:02:00Z,7\n")
    t = read_trace(path)
    assert t.minutes == 3 and t.requests[0] == 5 and np.isnan(t.requests[1])
    path.write_text(
        "timestamp,client,requests\n2025-03-03T00:00:00Z,a,5\n2025-03-03T00:00:00Z,b,2\n"
        "2025-03-03T00:01:00Z,a,1\n"
    )
    t = read_trace(path)
    assert t.requests.tolist() == [7.0, 1.0] and t.clients["b"].tolist() == [2.0, 0.0]
    path.write_text("timestamp,requests\nyesterday,5\n")
    with pytest.raises(ValueError, match=":2:"):
        read_trace(path)


def test_blank_cells_are_missing_not_zero(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text(
        "timestamp,requests,input_tokens,output_tokens\n"
        "2025-03-03T00:00:00Z,600,6000,600\n"
        "2025-03-03T00:01:00Z,,,\n"
        "2025-03-03T00:02:00Z,0,0,0\n"
    )
    t = read_trace(path)
    assert t.requests[0] == 600.0 and np.isnan(t.requests[1]) and t.requests[2] == 0.0
    assert t.input_tokens is not None and np.isnan(t.input_tokens[1]) and t.input_tokens[2] == 0.0
    path.write_text(
        "timestamp,client,requests\n2025-03-03T00:00:00Z,a,5\n2025-03-03T00:00:00Z,b,\n"
        "2025-03-03T00:01:00Z,a,\n2025-03-03T00:01:00Z,b,\n2025-03-03T00:02:00Z,a,1\n2025-03-03T00:02:00Z,b,2\n"
    )
    t = read_trace(path)
    assert np.isnan(t.requests[:2]).all() and t.requests[2] == 3.0  # b's empty cell: 5 is only part of it
    assert t.clients["a"][0] == 5.0 and np.isnan(t.clients["b"][0]) and np.isnan(t.clients["a"][1])


def test_packaged_trace_is_there() -> None:
    path = default_trace()
    assert path.exists() and (path.parent / "NOTICE").exists()
    assert read_trace(path).minutes == 7 * 1440


def test_simulate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write_trace(tmp_path / "t.csv", [600.0] * 120 + [1500.0] * 30 + [600.0] * 60)
    route = tmp_path / "route.yaml"
    route.write_text(
        "apiVersion: llmroute.io/v1alpha1\nkind: LLMRoute\nmetadata: {name: r}\nspec:\n"
        "  upstreams: [{name: a, url: 'http://a.invalid/v1', model: m}]\n"
        "  proxy: {maxReplicas: 40}\n  scaling: {metric: {targetPerReplica: 40}}\n"
        "  rateLimits:\n    identity: {type: Header}\n"
        "    tiers: [{name: gold, priority: 10, requestsPerMinute: 6000}, "
        "{name: free, requestsPerMinute: 1200}]\n"
    )
    out = tmp_path / "timeline.csv"
    plot = tmp_path / "plot.png"
    code = main(
        [
            "simulate",
            "--trace",
            str(trace),
            "--route",
            str(route),
            "--peak-replicas",
            "20",
            "--out",
            str(out),
            "--plot",
            str(plot),
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["policies"]) == {"llmroute", "hpa", "static", "oracle"}
    assert summary["policies"]["oracle"]["replica_minutes_vs_oracle"] == 1.0
    assert summary["frontier"]["checks"]["replica_minutes_vs_oracle"]["limit"] == 1.35
    with out.open() as timeline:
        rows = list(csv.DictReader(timeline))
    assert len(rows) == 210
    assert {
        "timestamp",
        "desired_replicas",
        "demand_rps",
        "ready_replicas",
        "reason",
        "hpa_desired",
        "limit_free_rpm_per_replica",
    } <= set(rows[0])
    assert rows[150]["limit_free_rpm"] == "1200"
    assert plot.stat().st_size > 0


def test_simulate_command_text_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write_trace(tmp_path / "t.csv", [300.0] * 90)
    out = tmp_path / "o.csv"
    assert (
        main(
            [
                "simulate",
                "--trace",
                str(trace),
                "--out",
                str(out),
                "--policy",
                "hpa",
                "--policy",
                "oracle",
                "--hpa-target",
                "0.6",
                "0.8",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "hpa@0.6" in text and "hpa@0.8" in text and "frontier" not in text
    assert main(["simulate", "--trace", str(tmp_path / "missing.csv"), "--out", str(out)]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load = [100.0] * 1440
    for i in range(8 * 60, 18 * 60):
        load[i] = 300.0
    load[600:610] = [900.0] * 10
    trace = write_trace(tmp_path / "day.csv", load)
    assert main(["report", "--trace", str(trace), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["peak_hours"]) <= set(range(8, 18)) and set(report["trough_hours"]).isdisjoint(
        range(8, 18)
    )
    assert report["peak_to_trough_ratio"] == pytest.approx(4.0)  # 10:00 holds the surge: 400 vs 100
    assert report["surges"]["count"] == 1 and report["surges"]["largest"][0]["time"] == "2025-03-03T10:00:00Z"
    assert not report["clients"]["available"]
    assert main(["report", "--trace", str(trace), "--timezone", "Asia/Tokyo"]) == 0
    assert "Asia/Tokyo" in capsys.readouterr().out
    assert main(["report", "--trace", str(trace), "--timezone", "Mars/Base"]) == 2


def test_report_with_clients(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    lines = ["timestamp,client,requests"]
    for i in range(120):
        lines.append(f"2025-03-03T{i // 60:02d}:{i % 60:02d}:00Z,big,100")
        if i % 30 == 0:
            lines.append(f"2025-03-03T{i // 60:02d}:{i % 60:02d}:00Z,rare,1")
    path.write_text("\n".join(lines) + "\n")
    from llmroute.sim.report import analyse

    clients = analyse(read_trace(path))["clients"]
    assert clients["available"] and clients["clients"] == 2
    assert clients["heaviest"][0]["client"] == "big" and clients["occasional_clients"] == 1
