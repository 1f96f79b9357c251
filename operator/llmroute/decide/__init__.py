"""The operator's decision step, without I/O: observed state in, the writes to make and the status to
report out.

This is where the core's three decisions (scaling, rate-limit plan, failover) meet the operator's rules:
no writes while paused or while another autoscaler owns the Deployment, conditions with stable transition
times, and one Event per transition (not one per cycle). Pure: it imports no Kubernetes or Prometheus
client (an import contract in ``make lint`` enforces it), so it is tested with plain values.

:func:`decide` runs the steps in order: :func:`~llmroute.decide.load.observe_load` (which numbers to
trust), :func:`~llmroute.decide.steps.scale`, :func:`~llmroute.decide.steps.fail_over`,
:func:`~llmroute.decide.steps.limit`, the proxy config, :func:`~llmroute.decide.steps.alert`,
:func:`~llmroute.decide.steps.authenticated`, :func:`~llmroute.decide.steps.ready`, and
:func:`~llmroute.decide.status.build_status`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from llmroute.decide.load import observe_load
from llmroute.decide.model import Observed, RouteActions
from llmroute.decide.report import Event, EventType, StatusReport
from llmroute.decide.status import build_status
from llmroute.decide.steps import alert, authenticated, fail_over, limit, ready, scale
from llmroute.render.config import build_proxy_config
from llmroute.spec.route import LLMRoute
from llmroute.spec.status import LLMRouteStatus
from llmroute.spec.times import rfc3339

__all__ = ["Event", "EventType", "Observed", "RouteActions", "decide"]


def decide(route: LLMRoute, obs: Observed) -> RouteActions:
    """Decide one reconcile cycle of ``route`` from ``obs`` (``obs.now`` is the only clock)."""
    saved = _saved_state(obs.previous)
    report = StatusReport(list(obs.previous.conditions), _iso(obs.now), route.metadata.generation)
    view = observe_load(route, obs, saved, report)
    scaling = scale(route, obs, view, saved, report)
    failover = fail_over(route, obs.now, view, saved, report)
    limits = limit(route, obs.now, view, scaling, saved, report)
    # failing open means serving from the least-bad group: its members must stay usable
    unhealthy = (
        set() if failover.fail_open else {u.name for u in failover.upstreams if u.state == "Unhealthy"}
    )
    config = build_proxy_config(
        route,
        limits=limits.limits,
        divisor=limits.divisor,
        replicas=scaling.desired,
        active_group=failover.active_group,
        unhealthy=unhealthy,
    )
    alerts = alert(route, obs.now, obs.alert_for_seconds, view, failover, saved, report)
    authenticated(route, report)
    ready(route, obs, scaling.paused, report)
    status = build_status(obs, report, view, scaling, failover, limits, config, alerts)
    return RouteActions(
        replicas=scaling.write,
        initial_replicas=scaling.desired,
        config=None if scaling.paused else config,
        status=status,
        events=report.events,
    )


def _iso(when: datetime) -> str:
    return rfc3339(when)


def _saved_state(previous: LLMRouteStatus) -> dict[str, Any]:
    """The core's state saved in the previous status (``{}`` if absent or unreadable)."""
    try:
        loaded = json.loads(previous.controller_state or "{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
