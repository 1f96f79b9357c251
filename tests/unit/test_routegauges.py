"""Each route's thresholds and state as operator gauges: set from the status, removed when gone."""

from __future__ import annotations

from prometheus_client import REGISTRY

from llmroute.controller import routegauges
from llmroute.spec import LLMRoute
from llmroute.spec.status import Condition, EffectiveLimit, LLMRouteStatus, Load, Replicas
from tests.cases import route as route_object

KEY = "team-a/chat"


def _value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"route": KEY, **labels})


def _route(alerts: dict[str, float]) -> LLMRoute:
    obj = route_object("chat")
    obj["metadata"]["namespace"] = "team-a"
    obj["spec"]["alerts"] = alerts
    return LLMRoute.from_object(obj)


def _status(ready: str = "True") -> LLMRouteStatus:
    return LLMRouteStatus(
        replicas=Replicas(desired=4, current=3),
        load=Load(time="2026-01-01T00:00:00Z", requests_per_second=31.5),
        active_group=1,
        effective_limits=[
            EffectiveLimit(tier="free", requests_per_minute=600, per_replica_requests_per_minute=150)
        ],
        conditions=[
            Condition(
                type="Ready",
                status=ready,
                reason="Reconciled",
                message="",
                last_transition_time="2026-01-01T00:00:00Z",
            )
        ],
    )


def test_export_sets_thresholds_state_and_limits_then_forgets_them() -> None:
    routegauges.export(KEY, _route({"requestsPerSecondAbove": 100, "errorRateAbove": 0.05}), _status())
    assert _value("llmroute_route_alert_threshold", alert="HighRequestRate") == 100
    assert _value("llmroute_route_alert_threshold", alert="HighErrorRate") == 0.05
    assert _value("llmroute_route_alert_threshold", alert="HighLatencyP95") is None
    assert _value("llmroute_route_condition", type="Ready", status="True") == 1
    assert _value("llmroute_route_condition", type="Ready", status="False") == 0
    assert _value("llmroute_route_replicas", kind="desired") == 4
    assert _value("llmroute_route_load") == 31.5
    assert _value("llmroute_route_active_group") == 1
    assert _value("llmroute_route_limit_requests_per_minute", tier="free", scope="replica") == 150
    assert _value("llmroute_route_shed_factor", tier="free") == 1

    # a threshold removed from the spec disappears; a failed cycle flips the condition gauges only
    routegauges.export(KEY, _route({"requestsPerSecondAbove": 100}), _status())
    assert _value("llmroute_route_alert_threshold", alert="HighErrorRate") is None
    failed = [
        Condition(
            type="Ready",
            status="False",
            reason="Forbidden",
            message="denied",
            last_transition_time="2026-01-01T00:01:00Z",
        )
    ]
    routegauges.export_conditions(KEY, failed)
    assert _value("llmroute_route_condition", type="Ready", status="False") == 1
    assert _value("llmroute_route_alert_threshold", alert="HighRequestRate") == 100

    routegauges.forget(KEY)
    assert _value("llmroute_route_alert_threshold", alert="HighRequestRate") is None
    assert _value("llmroute_route_condition", type="Ready", status="False") is None
    assert _value("llmroute_route_replicas", kind="desired") is None
