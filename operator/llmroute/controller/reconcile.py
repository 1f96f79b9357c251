"""One route's reconcile cycle with I/O: gather what is observed (metrics hub, Deployment scale, other
autoscalers, previous status), :func:`~llmroute.decide.decide`, then write — children created (owned by
the route), ConfigMap only when its content changed, replicas through the scale subresource — and patch
the status. A cycle that fails is reported on the route itself (``Ready=False``) by
:meth:`Reconciler.report_failure`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llmroute.controller import opmetrics, routegauges
from llmroute.controller.hub import MetricsHub, Registration
from llmroute.controller.settings import OperatorSettings
from llmroute.core.observed import load_key
from llmroute.decide import Event, Observed, RouteActions, decide
from llmroute.decide.conditions import get, set_condition
from llmroute.k8s.access import apply_access
from llmroute.k8s.failures import Failure
from llmroute.k8s.ownership import NotOwnedError
from llmroute.k8s.routes import RouteStatusWriter
from llmroute.k8s.workload import Workload
from llmroute.prom.queries import overrides, route_key
from llmroute.render.workload import (
    build_configmap,
    build_deployment,
    build_disruption_budget,
    build_network_policy,
    build_route_access,
    build_service,
    child_names,
)
from llmroute.spec.route import LLMRoute
from llmroute.spec.status import LLMRouteStatus
from llmroute.spec.times import epoch_rfc3339

log = logging.getLogger("llmroute.reconcile")
ACCESS_RECHECK_SECONDS = 300.0
EmitEvent = Callable[[Mapping[str, Any], Event], Awaitable[None]]


def registration(route: LLMRoute, settings: OperatorSettings) -> Registration:
    """How the hub watches ``route``. The failover window spans at least four scrape intervals (fewer
    samples make a windowed error rate meaningless, and none at all at one scrape per window)."""
    scrape = route.spec.prometheus.scrape_interval_seconds
    min_window = math.ceil(4 * (scrape if scrape is not None else settings.scrape_interval_seconds))
    return Registration(
        key=route_key(route),
        prom_url=route.spec.prometheus.url or settings.prometheus_url,
        rate_window=settings.rate_window_for(scrape),
        metric=load_key(route.spec.scaling.metric.type),
        window_seconds=max(route.spec.failover.window_seconds, min_window),
        lookback_days=route.spec.scaling.predictive.lookback_days,
        overrides=overrides(route),
    )


@dataclass
class Reconciler:
    settings: OperatorSettings
    hub: MetricsHub
    workload: Workload
    statuses: RouteStatusWriter
    emit: EmitEvent
    clock: Callable[[], float] = time.time
    # the failure each route last reported, so a failure repeated every cycle posts one Event
    _failing: dict[str, str] = field(default_factory=dict)
    # the config watch's access as last written per route, and when: read back (and repaired) only when it
    # changes or every ACCESS_RECHECK_SECONDS, not three reads every cycle
    _access: dict[str, tuple[list[dict[str, Any]], float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # hundreds of routes start (or wake) together; a few cycles at a time keep memory and API load flat
        self._slots = asyncio.Semaphore(self.settings.max_concurrent_reconciles)

    async def reconcile(self, body: Mapping[str, Any], rivals: Sequence[str] = ()) -> RouteActions:
        """One cycle for the LLMRoute object ``body``. ``rivals`` names (``LLMRoute/<name>``) another
        route that holds the Deployment (:mod:`llmroute.controller.claims`): then no replicas are
        written, as with another autoscaler."""
        async with self._slots:
            return await self._timed(body, list(rivals))

    async def _timed(self, body: Mapping[str, Any], rivals: list[str]) -> RouteActions:
        started = time.monotonic()
        route = LLMRoute.from_object(dict(body))
        key = route_key(route)
        self.hub.register(registration(route, self.settings))
        # decide on a real observation: on a fresh start (or a new route) the first metrics cycle has not
        # run yet, and "no data" then would post MetricsUnavailable (and undo alerts) for nothing
        wait = self.settings.metrics_interval_seconds + self.settings.query_timeout_seconds
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self.hub.wait_observed(key)
        try:
            actions = await self._cycle(route, body, rivals)
        except Exception:
            opmetrics.RECONCILE_ERRORS.inc()
            raise
        finally:
            opmetrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        if self._failing.pop(key, None) is not None:
            await self.emit(body, Event("Normal", "Reconciled", "reconciled again after a failure"))
        return actions

    async def _cycle(self, route: LLMRoute, body: Mapping[str, Any], rivals: list[str]) -> RouteActions:
        ns, names = route.metadata.namespace, child_names(route)
        now = datetime.fromtimestamp(self.clock(), UTC)
        key = route_key(route)
        metrics, error = self.hub.latest(key)
        start, history = self.hub.history(key, now.timestamp())
        scale = await asyncio.to_thread(self.workload.get_scale, ns, names["deployment"])
        conflicts = await asyncio.to_thread(self.workload.conflicting_autoscalers, ns, names["deployment"])
        observed = Observed(
            now=now,
            metrics=metrics,
            metrics_error=error,
            history_start=start,
            history=history,
            history_step=self.hub.step,
            scale=scale,
            conflicts=[*rivals, *conflicts],
            previous=LLMRouteStatus.model_validate(body.get("status") or {}),
            dry_run=self.settings.dry_run,
            alert_for_seconds=self.settings.alert_for_seconds,
        )
        actions = decide(route, observed)
        if actions.config is not None:
            await self._write_children(route, body, actions)
            if actions.replicas is not None and scale is not None:
                await asyncio.to_thread(self.workload.set_replicas, ns, names["deployment"], actions.replicas)
                opmetrics.DECISIONS.labels("up" if actions.replicas > scale.spec_replicas else "down").inc()
        await self._patch_status(route, actions.status.model_dump(by_alias=True, mode="json"))
        routegauges.export(route_key(route), route, actions.status)
        for event in actions.events:
            await self.emit(body, event)
        return actions

    async def report_invalid(self, body: Mapping[str, Any], problems: str) -> None:
        """An invalid spec that slipped past the schema: Ready=False naming the fields, one Event."""
        message = f"invalid spec, fix it to resume:\n{problems}"
        await self._set_not_ready(body, "InvalidSpec", message)
        await self.emit(body, Event("Warning", "InvalidSpec", message))

    def forget(self, key: str) -> None:
        """Drop what is remembered of the route ``key`` (``namespace/name``), once it is deleted: a route
        created again under the name starts afresh (its first failure posts its Warning Event), and routes
        deleted over weeks of churn do not stay in memory."""
        self._failing.pop(key, None)
        self._access.pop(key, None)

    async def report_failure(self, body: Mapping[str, Any], failure: Failure) -> None:
        """A failed cycle on the route: ``Ready=False`` with the failure's reason and the API's message,
        and one Warning Event when the route was not already failing for that reason. If the status
        cannot be written either (the same RBAC gap, say), the Event and the log still tell."""
        meta = body["metadata"]
        key = f"{meta.get('namespace', '')}/{meta['name']}"
        message = (
            f"reconcile failed ({'will retry' if failure.transient else 'needs a fix'}): {failure.message}"
        )
        previous = get(LLMRouteStatus.model_validate(body.get("status") or {}).conditions, "Ready")
        already = previous is not None and (previous.status, previous.reason) == ("False", failure.reason)
        first = self._failing.get(key) != failure.reason
        self._failing[key] = failure.reason
        try:
            await self._set_not_ready(body, failure.reason, message)
        except Exception as exc:  # report what we can; the next cycle tries again
            log.warning("%s: cannot write status either: %s", key, exc)
        if first and not already:
            log.warning("%s: %s", key, message)
            await self.emit(body, Event("Warning", failure.reason, message))

    async def _set_not_ready(self, body: Mapping[str, Any], reason: str, message: str) -> None:
        meta = body["metadata"]
        previous = LLMRouteStatus.model_validate(body.get("status") or {})
        stamp = epoch_rfc3339(self.clock())
        conditions = set_condition(
            previous.conditions,
            "Ready",
            "False",
            reason,
            message,
            now=stamp,
            generation=meta.get("generation"),
        )
        patch = {
            "observedGeneration": meta.get("generation"),
            "conditions": [c.to_wire() for c in conditions],
        }
        routegauges.export_conditions(f"{meta.get('namespace', '')}/{meta['name']}", conditions)
        await asyncio.to_thread(self.statuses.patch_status, meta["namespace"], meta["name"], patch)

    async def _write_children(self, route: LLMRoute, body: Mapping[str, Any], actions: RouteActions) -> None:
        assert actions.config is not None
        configmap = build_configmap(route, actions.config)
        if await asyncio.to_thread(self.workload.apply_configmap, configmap):
            log.info("%s: proxy config %s written", route_key(route), actions.config.hash)
        if route.spec.proxy.deployment_name is not None:
            return  # the user's own Deployment: llmroute only scales it
        denied = await self._write_access(route)
        replicas = actions.initial_replicas
        deployment = build_deployment(route, replicas, self.settings.proxy_image)
        service = build_service(route)
        result = await asyncio.to_thread(self.workload.apply_deployment, deployment)
        name = deployment["metadata"]["name"]
        if result == "created":
            await self.emit(body, Event("Normal", "Created", f"Deployment {name} with {replicas} replicas"))
        elif result == "updated":
            await self.emit(body, Event("Normal", "Updated", f"Deployment {name} pod template"))
        elif result == "restored":
            await self.emit(body, Event("Warning", "Restored", _restored("Deployment", name, "pod template")))
        if await asyncio.to_thread(self.workload.apply_service, service) == "restored":
            service_name = service["metadata"]["name"]
            message = _restored("Service", service_name, "type, selector and ports")
            await self.emit(body, Event("Warning", "Restored", message))
        await asyncio.to_thread(self.workload.apply_pdb, build_disruption_budget(route))
        if route.spec.proxy.network_policy.enabled:
            await asyncio.to_thread(self.workload.apply_network_policy, build_network_policy(route))
        if denied is not None:
            raise denied

    async def _write_access(self, route: LLMRoute) -> Exception | None:
        """Write the config watch's access (first, so the pods' ServiceAccount exists when they are
        created). A failure (e.g. an operator RBAC without it) is returned, not raised: the other children
        are still written, then the cycle fails with it, visible on the route. A name taken by an object
        the route does not control is raised at once: no Deployment may run as someone else's
        ServiceAccount."""
        access, now = build_route_access(route), time.monotonic()
        last, checked = self._access.get(route_key(route), (None, 0.0))
        if last == access and now - checked <= ACCESS_RECHECK_SECONDS:
            return None
        try:
            written = await asyncio.to_thread(apply_access, self.workload.api, access)
        except NotOwnedError:
            raise
        except Exception as exc:
            return exc
        self._access[route_key(route)] = (access, now)
        if written:
            log.info("%s: config watch access written: %s", route_key(route), ", ".join(written))
        return None

    async def _patch_status(self, route: LLMRoute, status: dict[str, Any]) -> None:
        # explicit nulls: a merge patch must remove what is no longer known (e.g. a lost load figure)
        await asyncio.to_thread(
            self.statuses.patch_status, route.metadata.namespace, route.metadata.name, status
        )


def _restored(kind: str, name: str, what: str) -> str:
    return (
        f"{kind} {name}: {what} changed outside the route, put back; change them in the LLMRoute "
        "(spec.proxy.template), or name your own Deployment in spec.proxy.deploymentName"
    )
