"""A self-hosted engine's load, read from its Prometheus metrics text (vLLM, SGLang, TGI).

The gauges read, per engine (waiting = queue depth; running; KV cache in use, 0..1):

- vLLM: ``vllm:num_requests_waiting``, ``vllm:num_requests_running``, ``vllm:kv_cache_usage_perc`` (older
  releases: ``vllm:gpu_cache_usage_perc``);
- SGLang: ``sglang:num_queue_reqs``, ``sglang:num_running_reqs``, ``sglang:token_usage``;
- TGI: ``tgi_queue_size``, ``tgi_batch_current_size`` (no KV-cache gauge).

Counts are summed over the samples of a family (one per model or data-parallel rank), the KV-cache share
is the largest. The text is parsed by ``prometheus_client``'s parser; lines of other families are dropped
before parsing (a vLLM ``/metrics`` page is mostly histograms, which the parser would otherwise build).
``Auto`` recognises the engine by which of these names are present.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prometheus_client.parser import text_string_to_metric_families

from llmroute.spec.upstream import EngineType

Signal = Literal["waiting", "running", "kv_cache_usage"]

GAUGES: dict[EngineType, dict[Signal, tuple[str, ...]]] = {
    "vLLM": {
        "waiting": ("vllm:num_requests_waiting",),
        "running": ("vllm:num_requests_running",),
        "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    },
    "SGLang": {
        "waiting": ("sglang:num_queue_reqs",),
        "running": ("sglang:num_running_reqs",),
        "kv_cache_usage": ("sglang:token_usage",),
    },
    "TGI": {
        "waiting": ("tgi_queue_size",),
        "running": ("tgi_batch_current_size",),
        "kv_cache_usage": (),
    },
}
_OWNER = {name: engine for engine, signals in GAUGES.items() for names in signals.values() for name in names}
_PREFIXES = tuple(_OWNER)


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """One reading of an engine: requests ``waiting`` in its queue and ``running`` in its batch (counts),
    ``kv_cache_usage`` the share of its KV cache in use (0..1). ``None``: the engine does not export it."""

    engine: EngineType
    waiting: float | None
    running: float | None
    kv_cache_usage: float | None


def _wanted(text: str) -> str:
    """The lines of ``text`` that belong to a family this module reads (``# HELP``/``# TYPE`` included)."""
    keep: list[str] = []
    for line in text.splitlines():
        bare = line[7:] if line.startswith(("# HELP ", "# TYPE ")) else line
        if bare.startswith(_PREFIXES):
            name = bare.split("{", 1)[0].split(" ", 1)[0]
            if name in _OWNER:
                keep.append(line)
    return "\n".join(keep) + "\n"


def read_engine_load(text: str, engine: EngineType = "Auto") -> EngineLoad | None:
    """The load in a metrics page of ``engine`` (``Auto``: whichever engine's gauges it holds).

    Returns ``None`` when the page holds none of that engine's gauges. Raises ``ValueError`` if the
    page is not in the Prometheus text format."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(_wanted(text)):
        samples = [s.value for s in family.samples if s.name == family.name]
        if samples:
            values[family.name] = (
                max(samples) if family.name.endswith(("_perc", "token_usage")) else sum(samples)
            )
    if engine == "Auto":
        found = [_OWNER[name] for name in values]
        if not found:
            return None
        engine = max(GAUGES, key=found.count)
    gauges = GAUGES[engine]
    signals = {
        signal: next((values[n] for n in names if n in values), None) for signal, names in gauges.items()
    }
    if all(v is None for v in signals.values()):
        return None
    kv = signals["kv_cache_usage"]
    return EngineLoad(
        engine=engine,
        waiting=signals["waiting"],
        running=signals["running"],
        kv_cache_usage=None if kv is None else min(1.0, max(0.0, kv)),
    )
