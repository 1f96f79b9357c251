"""recommend(): reactive sizing, hysteresis, stabilisation, step limits, schedules, no data, prediction."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from llmroute.core.hpa import HpaParams, Memory
from llmroute.core.nowcast import COLD_MARGIN, nowcast
from llmroute.core.predictive import Accuracy
from llmroute.core.scaling import ScalerState, recommend, recovery_floor
from tests.unit.core_helpers import T0, drive, minutes, scaling_spec, series

STEADY = 150  # minutes of constant history: past the cold start, a settled level


def steady(load: float, n: int = STEADY) -> np.ndarray:
    return np.full(n, load)


@pytest.mark.parametrize(
    ("load", "current", "max_replicas", "final", "limited_by"),
    [
        (400.0, 10, 100, 10, []),  # 400 / (40 x 1.1) -> 10
        (368.0, 10, 100, 10, ["tolerance"]),  # wants 9: within 15 % of 10, hold
        (300.0, 10, 100, 7, []),  # wants 7: worth scaling down
        (800.0, 10, 100, 20, []),  # wants 19, +5 % on the way up -> 20
        (2000.0, 10, 100, 20, ["scaleUpPolicy"]),  # wants 48, at most double per step
        (800.0, 10, 15, 15, ["maxReplicas"]),
        (10.0, 3, 100, 1, []),  # down to proxy.minReplicas (1)
    ],
)
def test_reactive_sizing_tolerance_and_limits(
    load: float, current: int, max_replicas: int, final: int, limited_by: list[str]
) -> None:
    route = scaling_spec(max_replicas=max_replicas)
    result = recommend(
        route,
        now=T0 + minutes(STEADY),
        current_replicas=current,
        history=series(steady(load)),
        state=ScalerState(),
    )
    assert result.recommendation.final == final
    assert result.recommendation.limited_by == limited_by
    assert result.nowcast is not None and result.nowcast.margin == pytest.approx(1.0)


def test_scale_down_waits_for_the_stabilisation_window() -> None:
    load = np.concatenate([steady(800.0), np.full(10, 300.0)])
    replicas, results = drive(scaling_spec(), load, current=19)
    # decision t sees minutes < t: the first low minute is seen at t = STEADY + 1 (index STEADY)
    assert all(r >= 19 for r in replicas[STEADY - 1 : STEADY + 4])
    assert replicas[STEADY + 4] <= 8  # the high recommendations have left the 300 s window
    assert "scale-down window 300s" in results[STEADY].recommendation.reason
    assert "scaleDownStabilization" in results[STEADY].recommendation.limited_by


def test_scale_up_is_immediate_and_step_limited() -> None:
    route = scaling_spec(
        behavior={
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}],
            }
        }
    )
    load = np.concatenate([steady(400.0), np.full(5, 1200.0)])
    replicas, results = drive(route, load, current=10)
    assert replicas[STEADY - 1] == 10
    assert replicas[STEADY : STEADY + 5] == [12, 14, 16, 18, 20]
    assert results[STEADY].recommendation.limited_by == ["scaleUpPolicy"]


@pytest.mark.parametrize(
    ("load", "current", "final", "limited_by"),
    [
        (400.0, 10, 10, ["coldStart"]),  # fits 10 at 44/replica: the cold margin (x1.25 -> 12) waits
        (400.0, 9, 12, []),  # 10 needed: scale up, sized with the cold margin, 400 x 1.25 / 44 -> 12
        (300.0, 10, 10, ["tolerance"]),  # a scale-down is never hurried by the cold start either
    ],
)
def test_with_no_history_the_margin_never_scales_up_on_its_own(
    load: float, current: int, final: int, limited_by: list[str]
) -> None:
    result = recommend(
        scaling_spec(),
        now=T0 + minutes(3),
        current_replicas=current,
        history=series([load] * 3),
        state=ScalerState(),
    )
    assert result.nowcast is not None and result.nowcast.margin == pytest.approx(COLD_MARGIN)
    assert result.recommendation.final == final
    assert result.recommendation.limited_by == limited_by


@pytest.mark.parametrize(
    ("now", "final", "schedule_min", "schedule_max", "limited"),
    [
        # night window 22:00-06:00 UTC (crossing midnight, starts Sunday: open Monday 00:00-06:00)
        (datetime(2025, 3, 3, 3, 0, tzinfo=UTC), 20, 20, None, "scheduleMin:night"),
        (datetime(2025, 3, 3, 7, 0, tzinfo=UTC), 10, None, None, None),
        # business hours in New York cap the count: 09:00 EDT is 13:00 UTC after the March change
        (datetime(2025, 3, 10, 13, 30, tzinfo=UTC), 5, None, 5, "scheduleMax:office"),
        (datetime(2025, 3, 7, 13, 30, tzinfo=UTC), 10, None, None, None),  # 08:30 EST: not yet
    ],
)
def test_schedules_bound_the_count(
    now: datetime, final: int, schedule_min: int | None, schedule_max: int | None, limited: str | None
) -> None:
    route = scaling_spec(
        schedules=[
            {"name": "night", "start": "22:00", "end": "06:00", "days": ["Sun"], "minReplicas": 20},
            {
                "name": "office",
                "start": "09:00",
                "end": "17:00",
                "timezone": "America/New_York",
                "days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
                "maxReplicas": 5,
            },
        ],
        behavior={
            "scaleDown": {
                "stabilizationWindowSeconds": 0,
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
            }
        },
    )
    history = series(steady(400.0), start=now - minutes(STEADY))
    result = recommend(route, now=now, current_replicas=10, history=history, state=ScalerState())
    rec = result.recommendation
    assert (rec.final, rec.schedule_min, rec.schedule_max) == (final, schedule_min, schedule_max)
    assert (limited in rec.limited_by) if limited else not rec.limited_by


def test_overlapping_schedules_minimum_wins() -> None:
    route = scaling_spec(
        schedules=[
            {"name": "floor", "start": "00:00", "end": "12:00", "minReplicas": 8},
            {"name": "cap", "start": "00:00", "end": "12:00", "maxReplicas": 5},
        ]
    )
    result = recommend(
        route,
        now=T0 + minutes(STEADY),
        current_replicas=10,
        history=series(steady(100.0)),
        state=ScalerState(),
    )
    assert result.recommendation.final == 8


@pytest.mark.parametrize(
    ("history", "now_offset", "fallback", "current", "final", "text"),
    [
        ([], 0, {}, 7, 7, "no load data yet"),
        ([10.0] * 20, 30, {}, 7, 7, "load data 600 s old"),  # stale: would scale down to 1, holds 7
        (
            [10.0] * 20,
            30,
            {"whenMetricsUnavailable": "Replicas", "replicas": 6},
            3,
            6,
            "fallback: at least 6",
        ),
        (
            [10.0] * 20,
            30,
            {"whenMetricsUnavailable": "Replicas", "replicas": 6},
            12,
            12,
            "never scaling down",
        ),
        ([float("nan")] * 20, 20, {}, 7, 7, "no load data yet"),
        ([float("inf")] * 20, 20, {}, 7, 7, "no load data yet"),  # not a measurement: missing
        ([-5.0] * 20, 20, {}, 7, 7, "no load data yet"),
        ([10.0] * 20, 22, {"staleAfterSeconds": 180}, 7, 1, "reactive"),  # 120 s old: fresh enough
    ],
)
def test_no_data_never_scales_down(
    history: list[float], now_offset: int, fallback: dict[str, object], current: int, final: int, text: str
) -> None:
    route = scaling_spec(fallback=fallback) if fallback else scaling_spec()
    result = recommend(
        route,
        now=T0 + minutes(now_offset),
        current_replicas=current,
        history=series(history),
        state=ScalerState(),
    )
    assert result.recommendation.final == final
    assert text in result.recommendation.reason
    if final == current and text != "reactive":
        assert "noData" in result.recommendation.limited_by
        assert result.stale


def test_burst_margin_follows_volatility() -> None:
    rng = np.random.default_rng(7)
    calm = 500 * rng.normal(1.0, 0.01, 200)
    bursty = 500 * np.where(rng.random(200) < 0.08, 1.5, 1.0) * rng.normal(1.0, 0.01, 200)
    noisy = 500 * rng.normal(1.0, 0.15, 200)  # heavy noise every minute
    m_calm, m_bursty, m_noisy = (nowcast(x).margin for x in (calm, bursty, noisy))  # type: ignore[union-attr]
    assert m_calm < 1.05 < m_bursty
    assert m_bursty == pytest.approx(1.15)  # capped at 1 + 1.5 x tolerance
    assert m_noisy == pytest.approx(1.15)  # heavy noise costs no more than the cap
    assert nowcast(noisy, max_margin=1.1).margin == pytest.approx(1.1)  # type: ignore[union-attr]
    cold = nowcast(np.array([500.0, 510.0, 490.0]))
    assert cold is not None and cold.margin == pytest.approx(COLD_MARGIN)


def _daily_step(days: int, at_minute: int, factor: float, base: float = 400.0, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    load = base * rng.normal(1.0, 0.01, days * 1440)
    for day in range(days):
        start = day * 1440 + at_minute
        load[start : start + 60] *= factor
    return load


def _at(load: np.ndarray, minute: int, mode: str = "Active", accuracy: Accuracy | None = None) -> object:
    route = scaling_spec(predictive={"mode": mode})
    history = series(load[:minute])
    state = ScalerState() if accuracy is None else ScalerState(accuracy=accuracy)
    return recommend(route, now=T0 + minutes(minute), current_replicas=10, history=history, state=state)


def test_prediction_pre_scales_before_a_recurring_surge() -> None:
    load = _daily_step(3, 9 * 60, 3.0)
    before = 2 * 1440 + 9 * 60 - 1  # 08:59 on day 3: nothing visible yet
    result = _at(load, before)
    rec = result.recommendation  # type: ignore[attr-defined]
    assert result.forecast.active  # type: ignore[attr-defined]
    # x3 on both past days (a rise seen on 2 days counts 2 / 2.5 of its size); step-limited to 20 now
    assert rec.reactive == 10 and rec.predictive >= 23 and rec.final == 20
    assert rec.reason.startswith("predictive")
    assert result.forecast.error_percent is not None and result.forecast.error_percent < 35  # type: ignore[attr-defined]


def test_forecast_only_reports_without_acting() -> None:
    load = _daily_step(3, 9 * 60, 3.0)
    result = _at(load, 2 * 1440 + 9 * 60 - 1, mode="ForecastOnly")
    rec = result.recommendation  # type: ignore[attr-defined]
    assert not result.forecast.active and "forecast only" in result.forecast.reason  # type: ignore[attr-defined]
    assert rec.predictive >= 23 and rec.final == 10


def test_prediction_needs_minimum_history() -> None:
    load = _daily_step(1, 9 * 60, 3.0)
    result = _at(load, 20 * 60)
    assert not result.forecast.active and "learning" in result.forecast.reason  # type: ignore[attr-defined]
    assert result.recommendation.predictive is None  # type: ignore[attr-defined]


def test_prediction_never_takes_capacity_below_what_load_needs() -> None:
    load = _daily_step(3, 9 * 60, 0.2)  # every day the load collapses at 09:00
    result = _at(load, 2 * 1440 + 9 * 60 - 1)
    rec = result.recommendation  # type: ignore[attr-defined]
    assert rec.predictive <= rec.reactive
    assert rec.final == 10 == rec.reactive


@pytest.mark.parametrize(
    ("error", "stepped_back", "active"),
    [
        (20.0, False, True),
        (50.0, False, False),  # above maxErrorPercent 35: steps back
        (30.0, True, False),  # still above 80 % of the limit: stays back
        (20.0, True, True),  # below 28 %: comes back
    ],
)
def test_accuracy_gates_prediction(error: float, stepped_back: bool, active: bool) -> None:
    load = _daily_step(3, 9 * 60, 3.0)
    minute = 2 * 1440 + 9 * 60 - 1
    now = (T0 + minutes(minute)).timestamp()
    acc = Accuracy(
        error_sum=error,
        actual_sum=100.0,
        updated=now,
        pending=((now - 60.0, 400.0),),
        stepped_back=stepped_back,
    )
    result = _at(load, minute, accuracy=acc)
    assert result.forecast.active is active  # type: ignore[attr-defined]
    assert result.state.accuracy.stepped_back is (not active)  # type: ignore[attr-defined]
    if not active:
        assert "stepped back" in result.forecast.reason  # type: ignore[attr-defined]
        assert result.recommendation.final == 10  # type: ignore[attr-defined]


def test_state_is_small_json_and_restores_the_same_decisions() -> None:
    load = _daily_step(2, 9 * 60, 2.0)[: 1440 + 600]
    replicas, results = drive(scaling_spec(), load, current=10)
    state = results[-1].state
    text = json.dumps(state.to_dict())
    assert len(text) < 8192
    restored = ScalerState.from_dict(json.loads(text))
    now = T0 + minutes(len(load) + 1)
    history = series(np.concatenate([load, [800.0]]))
    a = recommend(scaling_spec(), now=now, current_replicas=replicas[-1], history=history, state=state)
    b = recommend(scaling_spec(), now=now, current_replicas=replicas[-1], history=history, state=restored)
    assert a.recommendation == b.recommendation
    assert ScalerState.from_dict({"v": 999}) == ScalerState()
    assert ScalerState.from_dict(None) == ScalerState()


def test_breakout_is_covered_in_full_but_noise_is_not_chased() -> None:
    rng = np.random.default_rng(11)
    noisy = 500 * rng.lognormal(0.0, 0.15, 200)
    nc = nowcast(noisy)
    assert nc is not None
    inside = nowcast(np.concatenate([noisy, [nc.level * nc.band * 0.98]]))
    assert inside is not None and inside.burst_load < inside.last  # a noisy high minute: not chased
    calm = 500 * rng.normal(1.0, 0.01, 200)
    jump = nowcast(np.concatenate([calm, [800.0]]))
    assert jump is not None and jump.burst_load == 800.0  # a breakout: covered in full


@pytest.mark.parametrize("bad", [float("inf"), -1.0])
def test_an_infinite_or_negative_minute_is_missing_data(bad: float) -> None:
    # 400 req/s needs 10; a bad sample among the last minutes blocks scale-down, never reads as a load
    history = [400.0] * (STEADY - 3) + [bad, 100.0, 100.0]
    result = recommend(
        scaling_spec(),
        now=T0 + minutes(STEADY),
        current_replicas=10,
        history=series(history),
        state=ScalerState(),
    )
    assert result.recommendation.final == 10
    assert "metricsGap" in result.recommendation.limited_by
    assert np.isnan(series(history).values[STEADY - 3])


def test_finer_history_is_read_per_minute() -> None:
    rng = np.random.default_rng(5)
    per_minute = 400 * rng.normal(1.0, 0.05, STEADY)
    halves = np.repeat(per_minute, 2) * np.tile([0.9, 1.1], STEADY)  # 30 s samples, same minute means
    from llmroute.core.series import LoadSeries

    fine = LoadSeries(T0, 30, halves)
    now = T0 + minutes(STEADY)
    a = recommend(scaling_spec(), now=now, current_replicas=10, history=fine, state=ScalerState())
    b = recommend(
        scaling_spec(), now=now, current_replicas=10, history=series(per_minute), state=ScalerState()
    )
    assert a.recommendation == b.recommendation


def test_a_drop_to_nothing_stays_one_scale_up_step_from_the_recent_peak() -> None:
    # 1600/s needs 37 at 40 x 1.1; the default scale-up reaches max(16 c, c + 16) in a minute: 3 -> 48
    pause = np.concatenate([steady(1600.0), np.zeros(15), np.full(3, 1600.0)])
    replicas, results = drive(scaling_spec(), pause, current=39)
    assert min(replicas[STEADY : STEADY + 15]) == 3
    assert "recoveryFloor" in results[STEADY + 10].recommendation.limited_by
    assert replicas[STEADY + 15] >= 37  # back in one step, not 1 -> 17 -> 37
    # an outage longer than an hour is met in one step too: the floor holds for three hours of nothing
    outage = np.concatenate([steady(1600.0), np.zeros(150), np.full(3, 1600.0)])
    replicas, _ = drive(scaling_spec(), outage, current=39)
    assert replicas[STEADY + 149] == 3 and replicas[STEADY + 150] >= 37
    # after three hours of nothing the peak is no longer recent: down to minReplicas
    idle = np.concatenate([steady(1600.0), np.zeros(190)])
    replicas, _ = drive(scaling_spec(), idle, current=39)
    assert replicas[-1] == 1


def test_the_recovery_floor_skips_missing_minutes_and_needs_a_scale_up_policy() -> None:
    up = scaling_spec().scaling.behavior.scale_up
    rules = HpaParams.from_spec(scaling_spec()).up
    values = np.concatenate([np.full(10, 1600.0), np.full(90, np.nan), np.zeros(20)])
    assert recovery_floor(values, 44.0, rules, 1, 100) == 3  # the gap is not time without load
    assert recovery_floor(np.zeros(30), 44.0, rules, 1, 100) == 1
    disabled = HpaParams.from_spec(
        scaling_spec(behavior={"scaleUp": {**up.model_dump(by_alias=True), "selectPolicy": "Disabled"}})
    ).up
    assert recovery_floor(values, 44.0, disabled, 1, 100) == 1


def _short_spikes(n: int = STEADY, base: float = 330.0, every: int = 25, factor: float = 1.12) -> np.ndarray:
    """Calm load with a one-minute spike every ``every`` minutes, ending just before the next spike."""
    rng = np.random.default_rng(13)
    load = base * rng.normal(1.0, 0.005, n)
    load[np.arange(n) % every == every - 1] *= factor
    return load[: n - n % every - 1]


def test_peak_errors_cover_the_busiest_minute_of_the_horizon() -> None:
    load = _short_spikes()
    point, peak = nowcast(load, horizon=3), nowcast(load, horizon=3, peak=True)
    assert point is not None and peak is not None
    # a spike lands on one minute in 25 (under the 5 % quantile), in one 3-minute horizon in 8 (over it)
    assert point.margin < 1.03
    assert peak.margin == pytest.approx(1.12, abs=0.02)
    with pytest.raises(ValueError, match="horizon"):
        nowcast(load, horizon=0)


def test_a_scale_down_keeps_what_the_busiest_minute_of_the_removal_horizon_needs() -> None:
    load = _short_spikes()
    result = recommend(
        scaling_spec(),
        now=T0 + minutes(len(load)),
        current_replicas=10,
        history=series(load),
        state=ScalerState(),
    )
    # the level (~330/s) alone needs 8 at 44/replica; a spike (x1.12) within the next three minutes
    # needs 9, which is within the scale-down band of 10: hold instead of dropping 2 to buy 1 back
    assert result.recommendation.reactive == 8
    assert result.recommendation.final == 10
    assert result.recommendation.limited_by == ["removalHorizon", "tolerance"]
    assert "busiest of the next 3 minutes may need 9" in result.recommendation.reason


def test_a_scale_up_six_hours_after_the_last_decision_is_decided() -> None:
    """The scaler's memory outlives an operator outage: the first decision after six hours compounds the
    default Percent policy (x2 every 15 s) over 1,440 periods. That overflowed a float, and since a failed
    decision records nothing, every later cycle failed the same way: the route never scaled again."""

    state = ScalerState(memory=Memory(last_time=T0.timestamp()))
    result = recommend(
        scaling_spec(), now=T0 + minutes(360), current_replicas=2, history=series([400.0] * 360), state=state
    )
    assert result.recommendation.final == 10
    assert result.state.memory.last_time == (T0 + minutes(360)).timestamp()
