"""kopf handlers — decorators only: parse, call the controller, report. Run with
``llmroute operator`` (or ``kopf run -m llmroute.handlers``).

Each LLMRoute gets a daemon that reconciles it every ``reconcileIntervalSeconds`` and at once when its
spec changes (woken by a watch-event handler). One shared metrics hub queries Prometheus for all routes.
An index of every route's Deployment tells a daemon when another route holds the one it would scale
(:mod:`llmroute.controller.claims`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf
from prometheus_client import start_http_server
from pydantic import ValidationError

from llmroute import GROUP, PLURAL, VERSION
from llmroute.controller import opmetrics, routegauges
from llmroute.controller.claims import Claim, claim, rivals, scale_target
from llmroute.controller.hub import MetricsHub
from llmroute.controller.reconcile import Reconciler
from llmroute.controller.settings import OperatorSettings
from llmroute.decide import Event
from llmroute.k8s.client import api_client
from llmroute.k8s.events import EventRecorder
from llmroute.k8s.failures import classify, retry_seconds
from llmroute.k8s.release import FINALIZER
from llmroute.k8s.routes import RouteStatusWriter
from llmroute.k8s.scope import may_watch_namespaces, scanning_needed
from llmroute.k8s.workload import Workload
from llmroute.prom.client import PromAuth
from llmroute.spec.errors import format_error
from llmroute.spec.route import LLMRoute

log = logging.getLogger("llmroute.operator")


@dataclass
class OperatorRuntime:
    """What outlives one route: settings, the metrics hub, the reconciler, and per-route wake-ups."""

    settings: OperatorSettings
    hub: MetricsHub
    reconciler: Reconciler
    events: EventRecorder
    stop: asyncio.Event
    wake: dict[str, asyncio.Event] = field(default_factory=dict)
    seen_generation: dict[str, int] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


RUNTIME: OperatorRuntime | None = None
WATCHED_NAMESPACES: tuple[str, ...] = ()  # set by `llmroute operator -n`; empty: the whole cluster


async def _emit(body: Any, event: Event) -> None:
    assert RUNTIME is not None
    if event.type == "Warning":
        log.warning("%s: %s: %s", _key(body), event.reason, event.message)
    record = RUNTIME.events.record
    await asyncio.to_thread(record, dict(body), event.type, event.reason, event.message, event.action)


def _key(body: Any) -> str:
    return f"{body['metadata'].get('namespace', '')}/{body['metadata']['name']}"


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
    """kopf's own credentials, in an HTTP session with a bounded connection pool: a burst of watch
    events, Events and patches for hundreds of routes reuses a few keep-alive connections instead of
    opening one each (kopf's default pool is unbounded)."""
    info = kopf.login_via_client(**kwargs)
    if info is None:
        return None
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=OperatorSettings().kopf_connections, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        auth=info.as_aiohttp_basic_auth(),
    )
    return kopf.AiohttpSession(
        aiohttp_session=session,
        server=info.server,
        default_namespace=info.default_namespace,
        expiration=info.expiration,
        priority=info.priority,
    )


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    global RUNTIME
    s = OperatorSettings()
    log.info("llmroute operator settings: %s", s.describe())
    prefix = GROUP
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER  # `llmroute release-routes` removes it when uninstalling
    settings.posting.enabled = False  # Events come from llmroute's recorder (aggregated, own component)
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = [1, 2, 5, 10, 20]
    settings.execution.max_workers = 16
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
    api = api_client()
    if not await asyncio.to_thread(scanning_needed, WATCHED_NAMESPACES, lambda: may_watch_namespaces(api)):
        settings.scanning.disabled = True
        log.info(
            "may not list and watch namespaces: watching %s as named (kopf's namespace and CRD scanning off)",
            ", ".join(WATCHED_NAMESPACES),
        )
    hub = MetricsHub(
        step=s.history_step_seconds,
        chunk_hours=s.history_chunk_hours,
        query_timeout=s.query_timeout_seconds,
        auth=PromAuth(
            bearer_token_file=s.prometheus_bearer_token_file,
            username=s.prometheus_username,
            password_file=s.prometheus_password_file,
            ca_file=s.prometheus_ca_file,
            insecure_skip_verify=s.prometheus_insecure_skip_verify,
            headers=s.prometheus_headers,
        ),
    )
    reconciler = Reconciler(s, hub, Workload(api), RouteStatusWriter(api), _emit)
    RUNTIME = OperatorRuntime(s, hub, reconciler, EventRecorder(api), asyncio.Event())
    if s.metrics_port:
        start_http_server(s.metrics_port, addr="0.0.0.0")
    RUNTIME.tasks.append(asyncio.create_task(_hub_loop(RUNTIME)))


async def _hub_loop(rt: OperatorRuntime) -> None:
    await rt.hub.run(rt.settings.metrics_interval_seconds, rt.stop)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    if RUNTIME is not None:
        RUNTIME.stop.set()
        await asyncio.gather(*RUNTIME.tasks, return_exceptions=True)


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL)
async def validate(body: kopf.Body, **_: Any) -> None:
    """Refuse a spec the schema let through (no retries: the user must change it)."""
    try:
        LLMRoute.from_object(dict(body))
    except ValidationError as exc:
        raise kopf.PermanentError(f"invalid LLMRoute:\n{format_error(exc)}") from exc


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_event(body: kopf.Body, type: str | None, **_: Any) -> None:
    """Wake the route's daemon at once when its spec (generation) changed."""
    if RUNTIME is None or type is None:
        return
    key = _key(body)
    if type == "DELETED":  # the daemon's end forgets the rest; nothing may be remembered after it
        RUNTIME.seen_generation.pop(key, None)
        return
    generation = body["metadata"].get("generation", 0)
    if RUNTIME.seen_generation.get(key) != generation:
        RUNTIME.seen_generation[key] = generation
        wake = RUNTIME.wake.get(key)
        if wake is not None:
            wake.set()


@kopf.index(GROUP, VERSION, PLURAL)
async def scale_targets(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Claim]:
    """Every route's claim on the Deployment it scales, kept by kopf from the watch (no API calls)."""
    return {scale_target(body): claim(body)}


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10)
async def run_route(stopped: kopf.DaemonStopped, body: kopf.Body, **kwargs: Any) -> None:
    """Reconcile one route until it is deleted or the operator stops."""
    assert RUNTIME is not None
    claims: kopf.Index[tuple[str, str], Claim] = kwargs["scale_targets"]  # kopf passes every index
    rt, key = RUNTIME, _key(body)
    wake = rt.wake.setdefault(key, asyncio.Event())
    opmetrics.ROUTES.set(len(rt.wake))
    failures = 0
    invalid_generation: int | None = None
    try:
        while not stopped:
            wake.clear()
            generation = body["metadata"].get("generation", 0)
            delay: float = _interval(body)
            if invalid_generation != generation:
                try:
                    held = rivals(claims.get(scale_target(body), []), body["metadata"]["name"])
                    await rt.reconciler.reconcile(body, held)
                    failures = 0
                except ValidationError as exc:
                    invalid_generation = generation
                    await rt.reconciler.report_invalid(body, format_error(exc))
                except Exception as exc:
                    failure = classify(exc)
                    if failure.reason == "ReconcileFailed" and not failure.transient:
                        log.exception("%s: reconcile failed", key)  # a bug: keep the traceback
                    await rt.reconciler.report_failure(body, failure)
                    failures += 1
                    if failure.transient:
                        delay = min(delay, retry_seconds(failures) * random.uniform(0.8, 1.2))
            await _sleep(stopped, wake, delay)
    finally:
        rt.wake.pop(key, None)
        rt.seen_generation.pop(key, None)
        rt.hub.unregister(key)
        rt.reconciler.forget(key)
        routegauges.forget(key)
        opmetrics.ROUTES.set(len(rt.wake))


def _interval(body: kopf.Body) -> float:
    spec = body.get("spec") or {}
    value = spec.get("reconcileIntervalSeconds", 30)
    return float(value) if isinstance(value, int | float) else 30.0


async def _sleep(stopped: kopf.DaemonStopped, wake: asyncio.Event, delay: float) -> None:
    """Wait ``delay`` seconds, or less if woken (spec change) or stopped."""
    waiter = asyncio.create_task(wake.wait())
    stopper = asyncio.create_task(_stopped(stopped, delay))
    try:
        await asyncio.wait({waiter, stopper}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        stopper.cancel()


async def _stopped(stopped: kopf.DaemonStopped, delay: float) -> None:
    await stopped.wait(delay)
