"""One route's reconcile cycle with I/O: gather what is observed (metrics hub, Deployment scale, other
autoscalers, previous status), :func:`decide`, then write — children created and adopted, ConfigMap
only when its content changed, replicas through the scale subresource — and patch the status."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION
from llmroute.controller import opmetrics
from llmroute.controller.conditions import set_condition
from llmroute.controller.decide import Event, Observed, Outcome, decide
from llmroute.controller.hub import MetricsHub, Registration
from llmroute.controller.settings import Settings
from llmroute.k8s.workload import Workload
from llmroute.prom.queries import LOAD_KEY, overrides, route_key
from llmroute.render.workload import build_configmap, build_deployment, build_service, child_names
from llmroute.spec.route import LLMRoute
from llmroute.spec.status import LLMRouteStatus

log = logging.getLogger("llmroute.reconcile")
EmitEvent = Callable[[Mapping[str, Any], Event], None]


def registration(route: LLMRoute, settings: Settings) -> Registration:
    metric_type = route.spec.scaling.metric.type
    return Registration(
        key=route_key(route),
        prom_url=route.spec.prometheus.url or settings.prometheus_url,
        metric=LOAD_KEY.get(metric_type, "custom"),
        window_seconds=route.spec.failover.window_seconds,
        lookback_days=route.spec.scaling.predictive.lookback_days,
        overrides=overrides(route),
    )


@dataclass
class Reconciler:
    settings: Settings
    hub: MetricsHub
    workload: Workload
    emit: EmitEvent
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        # hundreds of routes start (or wake) together; a few cycles at a time keep memory and API load flat
        self._slots = asyncio.Semaphore(self.settings.max_concurrent_reconciles)

    async def reconcile(self, body: Mapping[str, Any]) -> Outcome:
        async with self._slots:
            return await self._timed(body)

    async def _timed(self, body: Mapping[str, Any]) -> Outcome:
        started = time.monotonic()
        route = LLMRoute.from_object(dict(body))
        self.hub.register(registration(route, self.settings))
        try:
            outcome = await self._cycle(route, body)
        except Exception:
            opmetrics.RECONCILE_ERRORS.inc()
            raise
        finally:
            opmetrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        return outcome

    async def _cycle(self, route: LLMRoute, body: Mapping[str, Any]) -> Outcome:
        ns, names = route.metadata.namespace, child_names(route)
        now = datetime.fromtimestamp(self.clock(), UTC)
        key = route_key(route)
        metrics, error = self.hub.latest(key)
        start, history = self.hub.history(key, now.timestamp())
        scale = await asyncio.to_thread(self.workload.get_scale, ns, names["deployment"])
        conflicts = await asyncio.to_thread(self.workload.conflicting_autoscalers, ns, names["deployment"])
        previous = LLMRouteStatus.model_validate(body.get("status") or {})
        observed = Observed(
            now=now,
            metrics=metrics,
            metrics_error=error,
            history_start=start,
            history=history,
            history_step=self.hub.step,
            scale=scale,
            conflicts=conflicts,
            previous=previous,
            dry_run=self.settings.dry_run,
        )
        outcome = decide(route, observed)
        if outcome.config is not None:
            await self._write_children(route, body, outcome, create_deployment=scale is None)
            if outcome.replicas is not None and scale is not None:
                await asyncio.to_thread(self.workload.set_replicas, ns, names["deployment"], outcome.replicas)
                opmetrics.DECISIONS.labels("up" if outcome.replicas > scale.spec_replicas else "down").inc()
        await self._patch_status(route, outcome.status)
        for event in outcome.events:
            self.emit(body, event)
        return outcome

    async def report_invalid(self, body: Mapping[str, Any], problems: str) -> None:
        """An invalid spec that slipped past the schema: Ready=False naming the fields, one Event."""
        meta = body["metadata"]
        previous = LLMRouteStatus.model_validate(body.get("status") or {})
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = f"invalid spec, fix it to resume:\n{problems}"
        conditions = set_condition(
            previous.conditions,
            "Ready",
            "False",
            "InvalidSpec",
            message,
            now=stamp,
            generation=meta.get("generation"),
        )
        patch = {
            "status": {
                "observedGeneration": meta.get("generation"),
                "conditions": [c.to_wire() for c in conditions],
            }
        }
        api = client.CustomObjectsApi(self.workload.api)
        await asyncio.to_thread(
            api.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            meta["namespace"],
            PLURAL,
            meta["name"],
            patch,
            _content_type="application/merge-patch+json",
        )
        self.emit(body, Event("Warning", "InvalidSpec", message))

    async def _write_children(
        self, route: LLMRoute, body: Mapping[str, Any], outcome: Outcome, *, create_deployment: bool
    ) -> None:
        assert outcome.config is not None
        owned = route.spec.proxy.deployment_name is None
        configmap = build_configmap(route, outcome.config)
        kopf.adopt(configmap, owner=cast(kopf.Body, body))
        if await asyncio.to_thread(self.workload.apply_configmap, configmap):
            log.info(
                "%s/%s: proxy config %s written",
                route.metadata.namespace,
                route.metadata.name,
                outcome.config.hash,
            )
        if not owned:
            return
        replicas = outcome.initial_replicas
        deployment, service = build_deployment(route, replicas), build_service(route)
        kopf.adopt([deployment, service], owner=cast(kopf.Body, body))
        result = await asyncio.to_thread(self.workload.apply_deployment, deployment)
        if result == "created":
            self.emit(
                body,
                Event(
                    "Normal",
                    "Created",
                    f"Deployment {deployment['metadata']['name']} with {replicas} replicas",
                ),
            )
        elif result == "updated":
            self.emit(
                body, Event("Normal", "Updated", f"Deployment {deployment['metadata']['name']} pod template")
            )
        await asyncio.to_thread(self.workload.apply_service, service)

    async def _patch_status(self, route: LLMRoute, status: LLMRouteStatus) -> None:
        # explicit nulls: a merge patch must remove what is no longer known (e.g. a lost load figure)
        body = {"status": status.model_dump(by_alias=True, mode="json")}
        api = client.CustomObjectsApi(self.workload.api)
        await asyncio.to_thread(
            api.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            route.metadata.namespace,
            PLURAL,
            route.metadata.name,
            body,
            _content_type="application/merge-patch+json",
        )
