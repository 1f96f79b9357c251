"""The operator's decision rules without I/O: what is written, what is reported, which Events fire."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from llmroute.core.observed import MetricKey, RouteMetrics, Scale, UpstreamMetrics
from llmroute.core.scaling import ScalerState, recommend
from llmroute.core.series import LoadSeries
from llmroute.decide import Observed, RouteActions, decide
from llmroute.decide.load import minutes_until_now
from llmroute.spec import LLMRoute
from llmroute.spec.status import LLMRouteStatus
from tests.unit.core_helpers import scaling_spec

NOW = datetime(2026, 3, 4, 12, 0, 30, tzinfo=UTC)
UPSTREAMS = [
    {"name": "a", "url": "http://127.0.0.1:9/v1", "model": "m", "group": 0},
    {"name": "b", "url": "http://127.0.0.1:10/v1", "model": "m", "group": 1},
]


def _route(**spec: Any) -> LLMRoute:
    body: dict[str, Any] = {
        "upstreams": UPSTREAMS,
        "proxy": {"minReplicas": 1, "maxReplicas": 20},
        "scaling": {"metric": {"targetPerReplica": 10}, "predictive": {"enabled": False}},
        "failover": {"minRequests": 5, "minDwellSeconds": 0, "cooldownSeconds": 0},
    }
    body.update(spec)
    body.setdefault("rateLimits", {"identity": {"type": "Header"}, "tiers": [{"name": "everyone"}]})
    obj = {"metadata": {"name": "r", "namespace": "ns", "generation": 3}, "spec": body}
    return LLMRoute.from_object(obj)


def _observed(
    rps: float | None,
    *,
    replicas: int = 2,
    upstreams: dict[str, UpstreamMetrics] | None = None,
    previous: LLMRouteStatus | None = None,
    error: str | None = None,
    conflicts: list[str] | None = None,
    now: datetime = NOW,
) -> Observed:
    values: dict[MetricKey, float] = {"rps": rps} if rps is not None else {}
    metrics = RouteMetrics(now.timestamp() - 1, values, upstreams or {})
    minutes = 30
    start = (now - timedelta(minutes=minutes)).timestamp() // 60 * 60
    history = np.full(minutes, rps if rps is not None else np.nan)
    return Observed(
        now=now,
        metrics=metrics,
        metrics_error=error,
        history_start=start,
        history=history,
        history_step=60,
        scale=Scale(replicas, replicas),
        conflicts=conflicts or [],
        previous=previous or LLMRouteStatus(),
    )


def _reasons(outcome: RouteActions) -> list[str]:
    return [e.reason for e in outcome.events]


def test_load_above_target_writes_more_replicas_with_an_event() -> None:
    out = decide(_route(), _observed(60.0))
    assert out.replicas is not None and out.replicas >= 6
    assert "ScaledUp" in _reasons(out)
    assert out.status.replicas.desired == out.replicas
    assert out.status.history[-1].to_replicas == out.replicas
    assert out.config is not None and out.status.config_hash == out.config.hash


def test_no_data_never_scales_down_and_says_why() -> None:
    out = decide(_route(), _observed(None, replicas=8))
    assert out.replicas is None and out.status.replicas.desired == 8
    cond = {c.type: c for c in out.status.conditions}["MetricsAvailable"]
    assert (cond.status, cond.reason) == ("False", "NoData")
    assert out.status.recommendation is not None and "noData" in out.status.recommendation.limited_by


def test_prometheus_error_holds_and_reports_once() -> None:
    first = decide(_route(), _observed(5.0, replicas=8))
    down = decide(_route(), _observed(5.0, replicas=8, error="connection refused", previous=first.status))
    assert down.replicas is None
    assert _reasons(down).count("MetricsUnavailable") == 1
    again = decide(_route(), _observed(5.0, replicas=8, error="connection refused", previous=down.status))
    assert "MetricsUnavailable" not in _reasons(again)  # once, not every cycle
    cond = {c.type: c for c in again.status.conditions}["MetricsAvailable"]
    assert (
        cond.last_transition_time
        == {c.type: c for c in down.status.conditions}["MetricsAvailable"].last_transition_time
    )
    back = decide(_route(), _observed(5.0, replicas=8, previous=again.status, now=NOW + timedelta(minutes=1)))
    assert "MetricsRecovered" in _reasons(back)


def test_a_refused_route_query_holds_and_names_the_field() -> None:
    first = decide(_route(), _observed(5.0, replicas=8))
    obs = _observed(5.0, replicas=8, previous=first.status)
    assert obs.metrics is not None
    refused = "spec.prometheus.queries.errorRate: Prometheus refused the query (HTTP 400): parse error"
    obs = replace(obs, metrics=replace(obs.metrics, query_errors=(refused,)))
    out = decide(_route(), obs)
    assert out.replicas is None and out.status.replicas.desired == 8  # load 5 would mean 1: held
    cond = {c.type: c for c in out.status.conditions}["MetricsAvailable"]
    assert (cond.status, cond.reason, cond.message) == ("False", "QueryRefused", refused)
    assert _reasons(out).count("MetricsUnavailable") == 1


def test_an_outage_whose_reason_changes_posts_one_warning() -> None:
    first = decide(_route(), _observed(5.0, replicas=8))
    down = decide(_route(), _observed(5.0, replicas=8, error="connection refused", previous=first.status))
    # Prometheus is back but has no fresh sample yet: still unavailable, now for another reason
    later = NOW + timedelta(minutes=1)
    empty = decide(_route(), _observed(None, replicas=8, previous=down.status, now=later))
    cond = {c.type: c for c in empty.status.conditions}["MetricsAvailable"]
    assert (cond.status, cond.reason) == ("False", "NoData")
    assert _reasons(down).count("MetricsUnavailable") == 1
    assert "MetricsUnavailable" not in _reasons(empty)
    back = decide(
        _route(), _observed(5.0, replicas=8, previous=empty.status, now=later + timedelta(minutes=1))
    )
    assert _reasons(back).count("MetricsRecovered") == 1


def test_a_rate_window_shorter_than_two_scrapes_is_named_once_it_lasts() -> None:
    # a 60 s scrape and a 1m window: the counters exist, one sample each, no rate
    previous = LLMRouteStatus()

    def cycle(seconds: int, samples: float) -> RouteActions:
        nonlocal previous
        when = NOW + timedelta(seconds=seconds)
        metrics = RouteMetrics(when.timestamp() - 1, {}, {}, rate_window="1m", samples_in_window=samples)
        out = decide(_route(), replace(_observed(None, previous=previous, now=when), metrics=metrics))
        previous = out.status
        return out

    def available(out: RouteActions) -> tuple[str, str]:
        cond = {c.type: c for c in out.status.conditions}["MetricsAvailable"]
        return cond.status, cond.reason

    first = cycle(0, 1.0)
    assert available(first) == ("False", "NoData") and _reasons(first) == []  # a restart looks the same
    assert available(cycle(60, 1.0)) == ("False", "NoData")
    lasting = cycle(125, 1.0)  # two windows and two minutes: no restart explains it any more
    assert available(lasting) == ("False", "RateWindowTooShort")
    cond = {c.type: c for c in lasting.status.conditions}["MetricsAvailable"]
    assert "1m rate window" in cond.message and "LLMROUTE_SCRAPE_INTERVAL_SECONDS" in cond.message
    assert _reasons(lasting) == ["MetricsUnavailable"]  # news, though the route never had data
    assert lasting.replicas is None  # and nothing scales on it
    # after a restart of Prometheus: one sample in the window for a moment, then enough again
    previous = LLMRouteStatus()
    cycle(0, 1.0)
    cycle(30, 2.0)
    assert available(cycle(150, 1.0)) == ("False", "NoData")  # the count starts again


def test_a_rate_window_much_longer_than_four_scrapes_is_named_on_the_available_condition() -> None:
    def message(window: str, samples: float | None) -> str:
        metrics = RouteMetrics(NOW.timestamp() - 1, {"rps": 40.0}, {}, window, samples_in_window=samples)
        out = decide(_route(), replace(_observed(40.0), metrics=metrics))
        cond = {c.type: c for c in out.status.conditions}["MetricsAvailable"]
        assert (cond.status, cond.reason) == ("True", "Available")
        return cond.message

    for window, samples in (("240s", 4.0), ("240s", 7.0), ("1m", 5.0), ("240s", None)):  # about as told
        assert "scrapes" not in message(window, samples), (window, samples)
    # told 60 s, Prometheus scrapes every 5 s: 48 samples in the 240 s window
    note = message("240s", 48.0)
    assert "240s rate window holds 48 scrapes" in note and "at least every 5 s" in note
    assert "takes 240 s to show" in note and "scrapeIntervalSeconds" in note
    assert "at least every 15 s" in message("2m", 8.0)  # while the window fills: a bound, not a guess


def test_degraded_fires_only_after_the_threshold_held_for_the_duration() -> None:
    route = _route(alerts={"requestsPerSecondAbove": 50})
    previous = LLMRouteStatus()

    def degraded(seconds: int, rps: float) -> tuple[str, str, list[str]]:
        nonlocal previous
        obs = _observed(rps, previous=previous, now=NOW + timedelta(seconds=seconds))
        out = decide(route, replace(obs, alert_for_seconds=120))
        previous = out.status
        cond = {c.type: c for c in out.status.conditions}["Degraded"]
        return cond.status, cond.reason, _reasons(out)

    assert degraded(0, 80.0)[:2] == ("False", "AlertPending")
    assert degraded(60, 80.0)[:2] == ("False", "AlertPending")
    status, reason, events = degraded(130, 80.0)
    assert (status, reason) == ("True", "AlertFiring") and "AlertFiring" in events
    assert "requests/s 80.0" in {c.type: c for c in previous.conditions}["Degraded"].message
    assert degraded(190, 20.0)[:2] == ("False", "Healthy")
    assert degraded(250, 80.0)[:2] == ("False", "AlertPending")  # a new crossing starts over


def test_load_without_any_upstream_figure_says_upstream_health_is_unknown() -> None:
    blind = decide(_route(), _observed(5.0))
    cond = {c.type: c for c in blind.status.conditions}["FailedOver"]
    assert (cond.status, cond.reason) == ("Unknown", "UpstreamHealthUnknown")
    assert "UpstreamHealthUnknown" in _reasons(blind)
    seeing = decide(_route(), _observed(5.0, upstreams=_failing(0.0), previous=blind.status))
    cond = {c.type: c for c in seeing.status.conditions}["FailedOver"]
    assert (cond.status, cond.reason) == ("False", "Primary")
    assert "FailedBack" not in _reasons(seeing)  # it never failed over


def test_events_name_the_action_taken() -> None:
    out = decide(_route(), _observed(60.0))
    actions = {e.reason: e.action for e in out.events}
    assert actions["ScaledUp"] == "Scale"


def test_other_autoscaler_means_no_replica_writes() -> None:
    out = decide(_route(), _observed(90.0, conflicts=["HorizontalPodAutoscaler/web"]))
    assert out.replicas is None
    cond = {c.type: c for c in out.status.conditions}["ScalingLimited"]
    assert cond.reason == "ConflictingAutoscaler"
    assert "ConflictingAutoscaler" in _reasons(out)
    assert out.config is not None  # limits still follow the replicas that exist


def test_paused_route_computes_but_writes_nothing() -> None:
    route = _route(paused=True)
    out = decide(route, _observed(90.0))
    assert out.replicas is None and out.config is None
    assert out.status.recommendation is not None and out.status.recommendation.final > 2  # would scale


def _failing(rate: float, healthy: float | None = None) -> dict[str, UpstreamMetrics]:
    return {"a": UpstreamMetrics(100.0, rate, 0.3, healthy), "b": UpstreamMetrics(100.0, 0.0, 0.3, 1.0)}


def test_failover_switches_group_and_marks_the_bad_upstream_inactive() -> None:
    out = decide(_route(), _observed(10.0, upstreams=_failing(0.6)))
    assert out.config is not None and out.config.active_group == 1
    assert {u.name: u.active for u in out.config.upstreams} == {"a": False, "b": True}
    assert "FailedOver" in _reasons(out)


def test_passive_ejection_by_every_proxy_counts_as_failing() -> None:
    # 2 % errors over the window (old successes dominate) but every proxy has ejected it
    out = decide(_route(), _observed(10.0, upstreams=_failing(0.02, healthy=0.0)))
    assert out.config is not None and out.config.active_group == 1


def test_fail_open_keeps_the_least_bad_group_usable() -> None:
    both_bad = {"a": UpstreamMetrics(100.0, 0.6, 0.3), "b": UpstreamMetrics(100.0, 0.9, 0.3)}
    out = decide(_route(), _observed(10.0, upstreams=both_bad))
    assert out.config is not None
    active = [u for u in out.config.upstreams if u.group == out.config.active_group]
    assert active and all(u.active for u in active)
    assert {c.type: c for c in out.status.conditions}["FailedOver"].reason == "FailOpen"


def test_state_round_trips_through_status() -> None:
    first = decide(_route(), _observed(60.0))
    assert first.status.controller_state
    again = decide(_route(), _observed(60.0, replicas=first.replicas or 2, previous=first.status))
    assert again.replicas is None  # already there: nothing to write


def test_scale_up_margin_is_remembered_by_the_scale_down_window() -> None:
    route = scaling_spec(max_replicas=50, target=10.0)
    values = np.full(10, 50.0)
    state, current = ScalerState(), 1
    start = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    finals = []
    for second in range(0, 60, 15):  # decisions every 15 s at constant load
        now = start + timedelta(minutes=10, seconds=second)
        result = recommend(
            route, now=now, current_replicas=current, history=LoadSeries(start, 60, values), state=state
        )
        state, current = result.state, result.recommendation.final
        finals.append(current)
    assert finals == sorted(finals), f"scaled back down at constant load: {finals}"


def test_rates_whose_window_reaches_into_a_gap_are_not_trusted_for_a_scale_down() -> None:
    obs = _observed(50.0, replicas=8)
    history = obs.history.copy()
    history[-7] = 20.0  # a window that reaches into the gap's start reads low
    history[-6:-3] = np.nan  # three minutes without data, three minutes ago
    history[-3:] = 20.0  # and low rates since: windows that reach into the gap
    gapped = replace(obs, history=history)
    series, _ = minutes_until_now(gapped, 20.0, rate_window=120.0)
    values = series.values
    assert np.isnan(values[-8:-1]).all()  # the gap and the minutes whose windows reach into it
    assert not np.isnan(values[:-8]).any()
    assert values[-1] == 50.0  # the latest window reaches into the gap: no lower than before it
    rising, _ = minutes_until_now(gapped, 80.0, rate_window=120.0)
    assert rising.values[-1] == 80.0  # a real rise still counts at once
    clean, _ = minutes_until_now(obs, 20.0, rate_window=120.0)
    assert clean.values[-1] == 20.0  # without a gap the latest is taken as it is
    out = decide(
        _route(), replace(gapped, metrics=RouteMetrics(NOW.timestamp() - 1, {"rps": 20.0}, {}, "2m"))
    )
    assert out.replicas is None or out.replicas >= 8, "scaled down on rates that reach into a gap"


def test_an_unauthenticated_route_says_so_with_a_warning_once() -> None:
    open_route = _route(rateLimits={"identity": {"type": "Unauthenticated"}})
    first = decide(open_route, _observed(5.0, replicas=8))
    cond = {c.type: c for c in first.status.conditions}["Authenticated"]
    assert (cond.status, cond.reason) == ("False", "Unauthenticated")
    assert [e.type for e in first.events if e.reason == "Unauthenticated"] == ["Warning"]
    again = decide(open_route, _observed(5.0, replicas=8, previous=first.status))
    assert "Unauthenticated" not in _reasons(again)  # on the transition, not every cycle
    keyed = decide(_route(), _observed(5.0, replicas=8, previous=again.status))
    cond = {c.type: c for c in keyed.status.conditions}["Authenticated"]
    assert (cond.status, cond.reason) == ("True", "TrustedHeader")


def test_shedding_acts_at_a_schedule_ceiling_below_max_replicas() -> None:
    # a schedule caps the route at 2 replicas (NOW is 12:00 UTC): saturated there, nothing can be added,
    # so the lowest tier is shed as it would be at proxy.maxReplicas
    tiers = [{"name": "gold", "priority": 10}, {"name": "free", "priority": 0}]
    route = _route(
        proxy={"minReplicas": 1, "maxReplicas": 20},
        scaling={
            "metric": {"targetPerReplica": 10},
            "predictive": {"enabled": False},
            "schedules": [{"name": "cheap", "start": "06:00", "end": "18:00", "maxReplicas": 2}],
        },
        rateLimits={"identity": {"type": "Header"}, "defaultTier": "free", "tiers": tiers},
    )
    out = decide(route, _observed(60.0, replicas=2))
    assert out.status.replicas.desired == 2
    factors = {limit.tier: limit.shed_factor for limit in out.status.effective_limits}
    assert factors == {"gold": 1.0, "free": 0.5}
    assert any("shedding tier free" in e.message for e in out.events)


def test_a_scale_up_to_the_ceiling_sheds_nothing_the_ceiling_can_serve() -> None:
    # a peak floor lifts 4 replicas to the ceiling of 8: 60 req/s is 150 % of the 4 but 75 % of the 8
    # asked for; shed on the 4, the free tier stayed shed (75 % is above restoreThreshold) for good
    tiers = [{"name": "gold", "priority": 10}, {"name": "free", "priority": 0}]
    route = _route(
        proxy={"minReplicas": 1, "maxReplicas": 8},
        scaling={
            "metric": {"targetPerReplica": 10},
            "predictive": {"enabled": False},
            "schedules": [{"name": "peak", "start": "06:00", "end": "18:00", "minReplicas": 8}],
        },
        rateLimits={"identity": {"type": "Header"}, "defaultTier": "free", "tiers": tiers},
    )
    out = decide(route, _observed(60.0, replicas=4))
    assert out.status.replicas.desired == 8
    assert {limit.tier: limit.shed_factor for limit in out.status.effective_limits} == {
        "gold": 1.0,
        "free": 1.0,
    }
    assert not any("shedding" in e.message for e in out.events)
    saturated = decide(route, _observed(95.0, replicas=4))  # 119 % of the 8: shed
    assert any("shedding tier free" in e.message for e in saturated.events)
