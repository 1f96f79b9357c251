"""The fake upstream's engine mode: a self-hosted inference engine with a fixed number of slots.

:class:`EngineModel` admits ``slots`` requests at once; the others wait in a first-come-first-served queue
(as vLLM's scheduler does when its batch is full). Each running request holds ``1 / slots`` of the KV
cache. :meth:`EngineModel.metrics_text` renders the gauges the way the real engine spells them (vLLM by
default, or SGLang or TGI), with a histogram beside them as a real page has, so a scraper must pick its
families out of a realistic page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

EngineFlavor = Literal["vLLM", "SGLang", "TGI"]


class EngineModel:
    """Slots, a queue and a KV-cache gauge; ``running``, ``waiting`` and ``peak_waiting`` are counts."""

    def __init__(self, slots: int, flavor: EngineFlavor = "vLLM", model: str = "fake") -> None:
        if slots < 1:
            raise ValueError("an engine needs at least one slot")
        self.slots = slots
        self.flavor = flavor
        self.model = model
        self.running = 0
        self.waiting = 0
        self.peak_waiting = 0
        self.finished = 0
        self._semaphore = asyncio.Semaphore(slots)

    @property
    def kv_cache_usage(self) -> float:
        return self.running / self.slots

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the body of the ``async with``, queueing until one is free."""
        self.waiting += 1
        self.peak_waiting = max(self.peak_waiting, self.waiting)
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self.finished += 1
            self._semaphore.release()

    def metrics_text(self) -> str:
        """The engine's ``/metrics`` page (Prometheus text format)."""
        if self.flavor == "SGLang":
            labels = f'{{model_name="{self.model}"}}'
            gauges = [
                ("sglang:num_queue_reqs", self.waiting),
                ("sglang:num_running_reqs", self.running),
                ("sglang:token_usage", self.kv_cache_usage),
            ]
        elif self.flavor == "TGI":
            labels = ""
            gauges = [("tgi_queue_size", self.waiting), ("tgi_batch_current_size", self.running)]
        else:
            labels = f'{{engine="0",model_name="{self.model}"}}'
            gauges = [
                ("vllm:num_requests_running", self.running),
                ("vllm:num_requests_waiting", self.waiting),
                ("vllm:kv_cache_usage_perc", self.kv_cache_usage),
            ]
        lines: list[str] = []
        for name, value in gauges:
            lines += [f"# HELP {name} {name} of the fake engine.", f"# TYPE {name} gauge"]
            lines.append(f"{name}{labels} {float(value)}")
        lines += _histogram("fake_engine_request_seconds", self.finished)
        return "\n".join(lines) + "\n"


def _histogram(name: str, count: int) -> list[str]:
    lines = [f"# HELP {name} Request duration.", f"# TYPE {name} histogram"]
    lines += [f'{name}_bucket{{le="{le}"}} {count}' for le in ("0.1", "1.0", "10.0", "+Inf")]
    return [*lines, f"{name}_sum {float(count)}", f"{name}_count {count}"]
