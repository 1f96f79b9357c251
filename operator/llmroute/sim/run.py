"""One simulation: a trace, a route, a capacity model and the policies to compare."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from llmroute.core.series import FloatArray
from llmroute.sim.capacity import NEED_CAP, CapacityModel, PolicyMetrics, measure, needed
from llmroute.sim.frontier import DEFAULT_SWEEP, Comparison, FrontierPoint, compare
from llmroute.sim.policies import PolicyRun, Progress, run_hpa, run_llmroute, run_oracle, run_static
from llmroute.sim.trace import Trace, demand_rps
from llmroute.spec.route import LLMRoute, LLMRouteSpec, json_numbers
from llmroute.spec.upstream import ProxySpec

POLICIES = ("llmroute", "hpa", "static", "oracle")
DEFAULT_TARGET_SHARE = 0.8
SHORT_TRACE_MINUTES = 60  # fewer minutes with data than this: the comparison is said to mean little
MAX_REPLICAS_HEADROOM = 3


@dataclass(frozen=True)
class SimulationSettings:
    """How a simulation runs: the capacity model, how the trace is scaled, the policies and the HPA sweep."""

    capacity_rps: float = 50.0
    startup_seconds: float = 60.0
    peak_replicas: float | None = None
    peak_rps: float | None = None
    policies: tuple[str, ...] = POLICIES
    hpa_targets: tuple[float, ...] = ()
    frontier: bool = True
    sweep: tuple[float, ...] = DEFAULT_SWEEP

    @property
    def model(self) -> CapacityModel:
        return CapacityModel(self.capacity_rps, self.startup_seconds)


@dataclass
class Result:
    trace: Trace
    spec: LLMRouteSpec
    settings: SimulationSettings
    demand: FloatArray
    runs: dict[str, PolicyRun]
    metrics: dict[str, PolicyMetrics]
    ready: dict[str, FloatArray]
    comparison: Comparison | None
    seconds: float
    route_source: str
    notes: list[str] = field(default_factory=list)

    @property
    def target_utilisation(self) -> float:
        return self.spec.scaling.metric.target_per_replica / self.settings.capacity_rps


def replicas_limit() -> int:
    """The largest ``proxy.maxReplicas`` an LLMRoute may have (the CRD's bound)."""
    bounds = ProxySpec.model_fields["max_replicas"].metadata
    return min(int(b.le) for b in bounds if getattr(b, "le", None) is not None)


def default_route(capacity_rps: float, peak_need: int) -> LLMRouteSpec:
    """The route a user gets by default, scaling on requests/s at 80 % of one replica's capacity.

    ``maxReplicas`` is raised from its default so the trace fits with room for the HPA sweep: three times
    the replicas the busiest minute needs (at least the default 10, at most :func:`replicas_limit`).
    """
    return LLMRouteSpec.model_validate(
        {
            "upstreams": [{"name": "primary", "url": "http://upstream.invalid/v1", "model": "model"}],
            "rateLimits": {"identity": {"type": "Unauthenticated"}},  # scaling alone is simulated
            "proxy": {"maxReplicas": min(replicas_limit(), max(10, MAX_REPLICAS_HEADROOM * peak_need))},
            "scaling": {"metric": {"targetPerReplica": DEFAULT_TARGET_SHARE * capacity_rps}},
        }
    )


def route_spec(doc: dict[str, Any]) -> LLMRouteSpec | None:
    """The spec of an LLMRoute manifest, or of a bare spec mapping (one with ``upstreams``); ``None`` for
    any other document. Raises pydantic's ``ValidationError``."""
    if doc.get("kind") == "LLMRoute":
        return LLMRoute.from_object(doc).spec
    if "upstreams" in doc:
        return LLMRouteSpec.model_validate(json_numbers(doc), strict=True)  # as LLMRoute.from_object
    return None


def load_route(path: str | Path) -> LLMRouteSpec:
    """An LLMRoute manifest (the first LLMRoute document) or a bare spec mapping from a YAML file."""
    for doc in yaml.safe_load_all(Path(path).read_text()):
        spec = route_spec(doc) if isinstance(doc, dict) else None
        if spec is not None:
            return spec
    raise ValueError(f"{path}: no LLMRoute found")


def hpa_names(targets: tuple[float, ...]) -> dict[str, float]:
    if len(targets) == 1:
        return {"hpa": targets[0]}
    return {f"hpa@{u:g}": u for u in targets}


def simulate(
    trace: Trace,
    spec: LLMRouteSpec | None,
    settings: SimulationSettings,
    *,
    progress: Progress | None = None,
    detail: bool = True,
) -> Result:
    """Run the selected policies (and, with llmroute and ``frontier``, the HPA sweep) over ``trace``.

    Raises ``ValueError`` when the busiest minute would need more than 2**52 replicas (of the capacity or
    the route's target per replica): such figures overflow before any policy could be compared.
    """
    began = time.perf_counter()
    model = settings.model
    demand = demand_rps(
        trace,
        capacity_rps=settings.capacity_rps,
        peak_replicas=settings.peak_replicas,
        peak_rps=settings.peak_rps,
    )
    peak = float(np.nanmax(demand)) if np.any(~np.isnan(demand)) else 0.0
    per_replica = min(settings.capacity_rps, spec.scaling.metric.target_per_replica if spec else math.inf)
    if not peak / per_replica <= NEED_CAP:
        raise ValueError(
            f"the busiest minute ({peak:.3g} req/s) would need more than 2**52 replicas of {per_replica:g} "
            "req/s: check the trace's volumes, the capacity, the peak scaling or the route's targetPerReplica"
        )
    source = "route file"
    peak_need = int(needed(demand, settings.capacity_rps).max()) if demand.size else 1
    if spec is None:
        spec = default_route(settings.capacity_rps, max(1, peak_need))
        source = "default route"
    u_route = spec.scaling.metric.target_per_replica / settings.capacity_rps
    targets = settings.hpa_targets or (round(u_route, 6),)
    runs: dict[str, PolicyRun] = {}
    for name in settings.policies:
        if name == "llmroute":
            runs[name] = run_llmroute(spec, demand, trace.start, model, progress=progress, detail=detail)
        elif name == "hpa":
            for label, u in hpa_names(targets).items():
                runs[label] = run_hpa(spec, demand, trace.start, model, u, name=label)
        elif name == "static":
            runs[name] = run_static(spec, demand, model)
        elif name == "oracle":
            runs[name] = run_oracle(spec, demand, model)
        else:
            raise ValueError(f"unknown policy {name!r} (choose from {', '.join(POLICIES)})")
    metrics: dict[str, PolicyMetrics] = {}
    ready: dict[str, FloatArray] = {}
    for name, run in runs.items():
        metrics[name], ready[name] = measure(demand, run.desired, model)
    comparison = None
    notes: list[str] = []
    if "llmroute" in runs and settings.frontier:
        oracle = metrics.get("oracle") or measure(demand, run_oracle(spec, demand, model).desired, model)[0]
        sweep = sorted({*settings.sweep, *targets, round(u_route, 6)})
        points: list[FrontierPoint] = []
        for i, u in enumerate(sweep):
            existing = next((k for k, v in hpa_names(targets).items() if v == u and k in metrics), None)
            if existing is not None:
                m = metrics[existing]
            else:
                m = measure(demand, run_hpa(spec, demand, trace.start, model, u).desired, model)[0]
            points.append(FrontierPoint(u, m))
            if progress is not None:
                progress("hpa sweep", i + 1, len(sweep))
        comparison = compare(points, metrics["llmroute"], oracle, u_route)
        if not comparison.in_range:
            notes.append("llmroute's replica-minutes fall outside the HPA sweep; the comparison is clamped")
        known = int(np.count_nonzero(~np.isnan(demand)))
        if known < SHORT_TRACE_MINUTES:
            notes.append(
                f"only {known} minute(s) with data: the targets' verdicts rest on too few minutes to say "
                f"anything about the policies (events per hour, in particular, extrapolate them)"
            )
    if peak_need > spec.proxy.max_replicas:
        notes.append(
            f"the busiest minute needs {peak_need:,} replicas, above the route's maxReplicas "
            f"{spec.proxy.max_replicas}: every policy is capped there"
        )
    if peak <= 0 and (settings.peak_replicas is not None or settings.peak_rps is not None):
        notes.append("no minute of the trace has traffic: there is no peak to scale")
    notes.append(
        f"{source}: target {spec.scaling.metric.target_per_replica:g} req/s per replica "
        f"({u_route:.0%} of {settings.capacity_rps:g}), replicas {spec.proxy.min_replicas}-"
        f"{spec.proxy.max_replicas}, peak demand {peak:.1f} req/s"
    )
    return Result(
        trace,
        spec,
        settings,
        demand,
        runs,
        metrics,
        ready,
        comparison,
        time.perf_counter() - began,
        source,
        notes,
    )
