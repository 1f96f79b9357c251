"""The metrics hub: one loop queries Prometheus for *all* routes at once (grouped by the ``route``
label), keeps the latest numbers and days of per-minute load history, and serves them to the per-route
reconcilers. Queries per cycle depend on the number of distinct Prometheus URLs, failover windows and
routes with PromQL overrides — not on the number of routes."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from llmroute.controller import opmetrics
from llmroute.controller.history import HistoryBuffer, bucketed, release_memory
from llmroute.core.observed import LoadKey, MetricKey, RouteMetrics, UpstreamMetrics, upstream_loads
from llmroute.prom.client import PromAuth, PromClient, PrometheusError, PrometheusQueryError
from llmroute.prom.queries import RouteQueries, batched, load_query

log = logging.getLogger("llmroute.hub")
SCALARS: tuple[MetricKey, ...] = ("rps", "inflight", "tokens", "error_rate", "latency_p95", "ratelimited")


@dataclass(frozen=True)
class Registration:
    """How the hub watches one route: ``rate_window`` is the PromQL range of its rates (four scrapes of
    its Prometheus); routes on the same Prometheus and window share one batch of queries."""

    key: str
    prom_url: str
    rate_window: str
    metric: LoadKey  # the batched series (rps | inflight | tokens) or "custom" (the route's own PromQL)
    window_seconds: int
    lookback_days: int
    overrides: RouteQueries

    @property
    def source(self) -> tuple[str, str]:
        return self.prom_url, self.rate_window


@dataclass
class _Source:
    """Everything the hub knows from one Prometheus server read with one rate window."""

    client: PromClient
    rate_window: str
    metrics: dict[str, RouteMetrics] = field(default_factory=dict)
    histories: dict[tuple[str, str], HistoryBuffer] = field(default_factory=dict)
    fetched_until: dict[str, float] = field(default_factory=dict)
    backfilled: set[tuple[str, str]] = field(default_factory=set)  # (metric, route) with history loaded
    queries: dict[str, str] = field(default_factory=dict)  # custom:<route> -> the query its history is of
    last_success: float | None = None
    error: str | None = None


class MetricsHub:
    def __init__(
        self,
        *,
        step: int = 60,
        chunk_hours: int = 6,
        query_timeout: float = 10.0,
        auth: PromAuth | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.step = step
        self.chunk = chunk_hours * 3600
        self.query_timeout = query_timeout
        self.auth = auth or PromAuth()
        self.clock = clock
        self.routes: dict[str, Registration] = {}
        self.sources: dict[tuple[str, str], _Source] = {}  # by (Prometheus URL, rate window)
        self.cycles = 0  # cycles completed
        self.started = 0  # cycles started
        self.last_cycle_queries = 0
        self.last_cycle_seconds = 0.0
        self.updated = asyncio.Event()
        self._wake = asyncio.Event()
        self._first_cycle: dict[str, int] = {}

    # --- registration -----------------------------------------------------------------------------
    def register(self, reg: Registration) -> None:
        """Add or update a route. A new or changed registration is observed from the next cycle on, which
        starts at once (without waiting for the interval)."""
        previous = self.routes.get(reg.key)
        if previous != reg:
            self._first_cycle[reg.key] = self.started + 1
            self._wake.set()
        self.routes[reg.key] = reg
        if reg.source not in self.sources:
            client = PromClient(reg.prom_url, timeout=self.query_timeout, auth=self.auth)
            self.sources[reg.source] = _Source(client, reg.rate_window)
        if previous is not None and previous.source != reg.source:
            self._drop_unused_sources()

    def unregister(self, key: str) -> None:
        """Forget a deleted route (its numbers and history go next cycle: :func:`forget_unregistered`)."""
        self.routes.pop(key, None)
        self._first_cycle.pop(key, None)
        self._drop_unused_sources()

    def _drop_unused_sources(self) -> None:
        """Drop the sources no route reads any more (deleted, or moved to another URL or rate window)."""
        used = {r.source for r in self.routes.values()}
        for source in [s for s in self.sources if s not in used]:
            del self.sources[source]

    def observed(self, key: str) -> bool:
        """Whether a metrics cycle (successful or not) has run for the route's current registration."""
        return key in self.routes and self.cycles >= self._first_cycle.get(key, 0)

    async def wait_observed(self, key: str) -> None:
        """Return once :meth:`observed` (callers bound the wait with ``asyncio.timeout``)."""
        while not self.observed(key):
            await self.updated.wait()

    # --- reading ------------------------------------------------------------------------------------
    def latest(self, key: str) -> tuple[RouteMetrics | None, str | None]:
        """The route's newest numbers (None if never seen) and the source's current error, if any."""
        reg = self.routes.get(key)
        if reg is None or reg.source not in self.sources:
            return None, "route not registered with the metrics hub"
        source = self.sources[reg.source]
        return source.metrics.get(key), source.error

    def history(self, key: str, now: float) -> tuple[float, npt.NDArray[np.float64]]:
        """(unix time of the first sample, per-step values with NaN gaps) of the route's scaling metric."""
        reg = self.routes.get(key)
        if reg is None:
            return now, np.empty(0)
        buf = self.sources[reg.source].histories.get((reg.metric, key))
        return buf.window(now) if buf else (now, np.empty(0))

    # --- the loop -----------------------------------------------------------------------------------
    async def run(self, interval: float, stopped: asyncio.Event) -> None:
        while not stopped.is_set():
            started = time.monotonic()
            try:
                await asyncio.to_thread(self.cycle)
            except Exception:  # never let the loop die; the error is recorded per source
                log.exception("metrics cycle failed")
            self.updated.set()
            self.updated = asyncio.Event()
            remaining = max(0.0, interval - (time.monotonic() - started))
            await self._pause(stopped, remaining)

    async def _pause(self, stopped: asyncio.Event, seconds: float) -> None:
        """Until the next cycle: ``seconds``, or less when a route registers or the operator stops."""
        waiters = {asyncio.ensure_future(stopped.wait()), asyncio.ensure_future(self._wake.wait())}
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._wake.clear()

    def cycle(self) -> None:
        self.started += 1
        started = time.monotonic()
        # One copy of each: routes (un)register from the event loop while the cycle runs in a worker thread.
        # The queries sent are counted over the same copy of the sources, so a source dropped mid-cycle
        # neither hides its earlier count nor makes the cycle's count negative.
        sources = list(self.sources.items())
        sent_before = sum(s.client.queries_sent for _, s in sources)
        now = self.clock()
        registered = list(self.routes.values())
        for (url, _), source in sources:
            routes = [r for r in registered if r.source == (url, source.rate_window)]
            if not routes:
                continue
            forget_unregistered(source, routes, now)
            try:
                self._collect(source, routes, now)
            except PrometheusError as exc:
                if source.error is None:
                    log.warning("Prometheus %s unavailable: %s", url, exc)
                source.error = str(exc)
            else:
                if source.error is not None:
                    log.info("Prometheus %s available again", url)
                source.error = None
                source.last_success = now
        self.cycles += 1
        if self.cycles % 20 == 0:
            release_memory()
        self.last_cycle_queries = sum(s.client.queries_sent for _, s in sources) - sent_before
        self.last_cycle_seconds = time.monotonic() - started
        opmetrics.METRICS_CYCLE_SECONDS.set(self.last_cycle_seconds)
        opmetrics.METRICS_CYCLE_QUERIES.set(self.last_cycle_queries)
        opmetrics.PROMETHEUS_QUERIES.inc(self.last_cycle_queries)
        opmetrics.METRICS_CYCLES.inc()

    def _collect(self, source: _Source, routes: list[Registration], now: float) -> None:
        prom = source.client
        values: dict[str, dict[MetricKey, float]] = {r.key: {} for r in routes}
        upstreams: dict[str, dict[str, UpstreamMetrics]] = {r.key: {} for r in routes}
        for name in SCALARS:
            for (key,), value in prom.instant(batched(rate_window=source.rate_window)[name]).items():
                if key in values:
                    values[key][name] = value
        samples = prom.instant(batched(rate_window=source.rate_window)["samples"])
        healthy = prom.instant(batched()["upstream_healthy"], ("route", "upstream"))
        loads = upstream_loads(prom.instant(batched()["upstream_load"], ("route", "upstream", "signal")))
        for window in sorted({r.window_seconds for r in routes}):
            queries = batched(window, source.rate_window)
            labels = ("route", "upstream")
            requests = _added(
                prom.instant(queries["upstream_requests"], labels),
                prom.instant(queries["probe_requests"], labels),
            )
            errors = _added(
                prom.instant(queries["upstream_errors"], labels),
                prom.instant(queries["probe_errors"], labels),
            )
            latency = prom.instant(queries["upstream_latency"], labels)
            missing = {r.key for r in routes if r.window_seconds == window} - {key for key, _ in requests}
            if missing:
                # proxies that export only the documented contract: judge upstreams by the responses
                for fallback, into in (("fallback_requests", requests), ("fallback_errors", errors)):
                    found = prom.instant(queries[fallback], labels)
                    into.update({k: v for k, v in found.items() if k[0] in missing})
            for (key, upstream), count in requests.items():
                reg = self.routes.get(key)
                if reg is None or reg.window_seconds != window or key not in upstreams:
                    continue
                rate = errors.get((key, upstream), 0.0) / count if count > 0 else None
                upstreams[key][upstream] = UpstreamMetrics(
                    count, rate, latency.get((key, upstream)), healthy.get((key, upstream))
                )
        refused: dict[str, list[str]] = {r.key: [] for r in routes}
        for reg in routes:
            if reg.overrides.any():
                self._apply_overrides(prom, reg, values[reg.key], upstreams[reg.key], refused[reg.key])
        self._refresh_history(source, routes, now, refused)
        for reg in routes:
            counted = samples.get((reg.key,))
            source.metrics[reg.key] = RouteMetrics(
                now,
                values[reg.key],
                upstreams[reg.key],
                source.rate_window,
                counted,
                loads.get(reg.key, {}),
                tuple(refused[reg.key]),
            )

    def _apply_overrides(
        self,
        prom: PromClient,
        reg: Registration,
        values: dict[MetricKey, float],
        ups: dict[str, UpstreamMetrics],
        refused: list[str],
    ) -> None:
        """The route's own PromQL, each query on its own: one Prometheus refuses (a typo, a query that
        cannot be evaluated) is named in ``refused`` as ``field: reason`` and the rest still count."""
        q = reg.overrides
        # ``load`` replaces requests/s, or is the load itself for a Custom metric (InFlight and
        # TokensPerSecond routes override their figure with ``inflight`` / ``tokens``)
        load_target: MetricKey | None = reg.metric if reg.metric in ("rps", "custom") else None
        overrides: tuple[tuple[MetricKey | None, str | None], ...] = (
            (load_target, q.load),
            ("inflight", q.inflight),
            ("tokens", q.tokens),
            ("error_rate", q.error_rate),
            ("latency_p95", q.latency_p95),
        )
        for name, query in overrides:
            if name is not None and query is not None:
                try:
                    value = prom.scalar(query)
                except PrometheusQueryError as exc:
                    refused.append(f"{_field(reg, name)}: {exc}")
                    continue
                if value is not None:
                    values[name] = value
        if q.upstream_error_rate is not None:
            per_upstream: dict[str, dict[str, float]] = {}
            for kind, per in (
                ("upstream_error_rate", q.upstream_error_rate),
                ("upstream_latency", q.upstream_latency),
                ("upstream_requests", q.upstream_requests),
            ):
                if per is None:
                    continue
                try:
                    per_upstream[kind] = {u: v for (u,), v in prom.instant(per, ("upstream",)).items()}
                except PrometheusQueryError as exc:
                    refused.append(f"{_field(reg, kind)}: {exc}")
            counts, lat = per_upstream.get("upstream_requests", {}), per_upstream.get("upstream_latency", {})
            for upstream, rate in per_upstream.get("upstream_error_rate", {}).items():
                ups[upstream] = UpstreamMetrics(counts.get(upstream, float("inf")), rate, lat.get(upstream))

    def _refresh_history(
        self, source: _Source, routes: list[Registration], now: float, refused: dict[str, list[str]]
    ) -> None:
        lookback = max(r.lookback_days for r in routes) * 86400
        self._fit_histories(source, routes)
        for metric in sorted({r.metric for r in routes if r.metric != "custom"}):
            keys = {(metric, r.key) for r in routes if r.metric == metric}
            capacity = {r.key: self._capacity(r) for r in routes if r.metric == metric}
            late = sorted(k for m, k in keys - source.backfilled) if metric in source.fetched_until else []
            chunks = self._range(source, metric, load_query(metric, source.rate_window), now, lookback)
            if late:  # routes registered after the first fetch: their past, up to where that fetch began
                until = source.fetched_until[metric]
                backfill = load_query(metric, source.rate_window, late)
                chunks = itertools.chain(
                    self._chunks(source, backfill, until - lookback, until, ("route",)), chunks
                )
            for (key,), samples in chunks:
                if (metric, key) not in keys:
                    continue  # a route this operator does not run (deleted, or another's): no buffer
                buf = source.histories.get((metric, key))
                if buf is None:
                    buf = source.histories[(metric, key)] = HistoryBuffer(self.step, capacity[key])
                buf.extend(bucketed(samples, self.step))
            source.backfilled |= keys
        for reg in routes:
            if reg.metric == "custom" and reg.overrides.load:
                days = reg.lookback_days * 86400
                buf = source.histories.setdefault(
                    (reg.metric, reg.key), HistoryBuffer(self.step, self._capacity(reg))
                )
                source.queries[f"custom:{reg.key}"] = reg.overrides.load
                try:
                    for _, samples in self._range(source, f"custom:{reg.key}", reg.overrides.load, now, days):
                        buf.extend(bucketed(samples, self.step))
                except PrometheusQueryError as exc:
                    refused[reg.key].append(f"{_field(reg, 'custom')}: {exc} (history)")

    def _capacity(self, reg: Registration) -> int:
        """Steps of history the route's ``lookbackDays`` asks for."""
        return max(1, reg.lookback_days * 86400 // self.step)

    def _fit_histories(self, source: _Source, routes: list[Registration]) -> None:
        """Resize the buffers of routes whose ``lookbackDays`` changed. A longer look-back keeps what is
        held and fetches the older days it now covers (the route is backfilled again; samples already
        held are written over with the same values), so raising it takes effect at the next cycle, not
        after the added days have passed."""
        for reg in routes:
            buf = source.histories.get((reg.metric, reg.key))
            want = self._capacity(reg)
            if buf is None or buf.capacity == want:
                continue
            grew = want > buf.capacity
            buf.resize(want)
            if grew and reg.metric == "custom":
                source.fetched_until.pop(f"custom:{reg.key}", None)
            elif grew:
                source.backfilled.discard((reg.metric, reg.key))

    def _range(
        self, source: _Source, tag: str, query: str, now: float, lookback: int
    ) -> Iterator[tuple[tuple[str, ...], list[tuple[float, float]]]]:
        """New samples since the last fetch of ``tag`` (the whole lookback the first time), one chunk at a
        time so a first fetch of days of history never sits in memory as Python objects all at once."""
        end = float(int(now // self.step) * self.step)
        start = source.fetched_until.get(tag, end - lookback)
        labels: tuple[str, ...] = ("route",) if not tag.startswith("custom:") else ()
        yield from self._chunks(source, query, start, end, labels)
        source.fetched_until[tag] = end

    def _chunks(
        self, source: _Source, query: str, start: float, end: float, labels: tuple[str, ...]
    ) -> Iterator[tuple[tuple[str, ...], list[tuple[float, float]]]]:
        """Samples of ``query`` in (``start``, ``end``], ``chunk_hours`` at a time."""
        cursor, big = start, end - start > self.chunk
        while cursor < end:
            stop = min(end, cursor + self.chunk)
            chunk = source.client.range(query, _dt(cursor + self.step), _dt(stop), self.step, labels=labels)
            yield from chunk.items()
            del chunk
            cursor = stop
        if big:
            release_memory()


def forget_unregistered(source: _Source, routes: list[Registration], now: float) -> None:
    """Drop what ``source`` holds for routes not among ``routes`` (deleted, or their metric changed), the
    history of a Custom metric whose query changed (the old query's figures, perhaps in another unit,
    would stand for the new one's past and the new figures would follow them in one series), and
    history fetched up to after ``now`` (the clock stepped back: new samples would fall before the buffer
    and be lost until the clock caught up). What is dropped for a route still registered is fetched afresh."""
    ahead, keys = {t for t, until in source.fetched_until.items() if until > now}, {r.key for r in routes}
    ahead |= {
        t
        for r in routes
        if r.metric == "custom"
        and (t := f"custom:{r.key}") in source.queries
        and source.queries[t] != r.overrides.load
    }
    wanted = {(r.metric, r.key) for r in routes if r.metric not in ahead and f"custom:{r.key}" not in ahead}
    custom = {f"custom:{key}" for metric, key in wanted if metric == "custom"}
    source.metrics = {k: v for k, v in source.metrics.items() if k in keys}
    source.histories = {k: v for k, v in source.histories.items() if k in wanted}
    source.backfilled &= wanted
    source.fetched_until = {
        t: v
        for t, v in source.fetched_until.items()
        if t not in ahead and (not t.startswith("custom:") or t in custom)
    }
    source.queries = {t: q for t, q in source.queries.items() if t in custom}


def _added(a: dict[tuple[str, ...], float], b: dict[tuple[str, ...], float]) -> dict[tuple[str, ...], float]:
    return {key: a.get(key, 0.0) + b.get(key, 0.0) for key in a.keys() | b.keys()}


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


_FIELDS = {
    "rps": "spec.prometheus.queries.load",
    "inflight": "spec.prometheus.queries.inflight",
    "tokens": "spec.prometheus.queries.tokens",
    "error_rate": "spec.prometheus.queries.errorRate",
    "latency_p95": "spec.prometheus.queries.latencyP95",
    "upstream_error_rate": "spec.prometheus.queries.upstreamErrorRate",
    "upstream_latency": "spec.prometheus.queries.upstreamLatency",
    "upstream_requests": "spec.prometheus.queries.upstreamRequests",
}


def _field(reg: Registration, name: str) -> str:
    """The route's field holding the query behind ``name`` (a Custom metric's load is its own query)."""
    if name == "custom":
        return "spec.scaling.metric.query"
    return _FIELDS.get(name, f"spec.prometheus.queries.{name}")
