"""Priority admission: at most ``capacity`` concurrent upstream requests; waiters served by priority.

When every slot is taken, a request waits in a heap ordered by (higher priority first, then arrival). A
released slot goes straight to the best waiter, so a lower tier can never overtake a higher one. A waiter
whose deadline passes is shed (the caller answers 503). Capacity can change on config reload without
disturbing requests already admitted.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class PriorityGate:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.active = 0
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._heap if not f.done())

    def resize(self, capacity: int) -> None:
        self.capacity = capacity
        self._wake()

    async def acquire(self, priority: int, wait: float | None) -> bool:
        """Take a slot; ``False`` if none became free within ``wait`` seconds (None: wait forever)."""
        if self.active < self.capacity:
            self._wake()  # earlier waiters first; this also drops entries of waiters that gave up
            if self.active < self.capacity:
                self.active += 1
                return True
        if wait is not None and wait <= 0:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (-priority, next(self._seq), future))
        try:
            if wait is None:
                await future
            else:
                async with asyncio.timeout(wait):
                    await asyncio.shield(future)
        except BaseException as exc:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed to us just as we gave up: pass it on
            else:
                future.cancel()
                self._prune()
            if isinstance(exc, TimeoutError) and not _cancelling():
                return False
            raise
        return True

    def release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._heap and self.active < self.capacity:
            _, _, future = heapq.heappop(self._heap)
            if not future.done():
                self.active += 1
                future.set_result(None)

    def _prune(self) -> None:
        while self._heap and self._heap[0][2].done():
            heapq.heappop(self._heap)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
