"""A fixed-step ring of samples per route: days of per-minute history in a numpy array (4 bytes a
sample), so 200 routes x 7 days stay under ten megabytes."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import math

import numpy as np
import numpy.typing as npt


class HistoryBuffer:
    """Samples on a grid of ``step`` seconds covering the last ``capacity`` steps; NaN = no sample.

    Stored as float32 (7 significant digits are plenty for a load figure; half the memory), read back
    as float64."""

    def __init__(self, step: int, capacity: int):
        self.step = step
        self.capacity = capacity
        self.start: float | None = None  # unix time of index 0
        self.values: npt.NDArray[np.float32] = np.full(capacity, np.nan, dtype=np.float32)

    def put(self, ts: float, value: float) -> None:
        slot = math.floor(ts / self.step) * self.step
        if self.start is None:
            self.start = slot - (self.capacity - 1) * self.step
        index = int((slot - self.start) // self.step)
        if index >= self.capacity:
            shift = index - self.capacity + 1
            if shift >= self.capacity:
                self.values[:] = np.nan
            else:
                self.values[:-shift] = self.values[shift:]
                self.values[-shift:] = np.nan
            self.start += shift * self.step
            index = self.capacity - 1
        if index >= 0:
            self.values[index] = value

    def resize(self, capacity: int) -> None:
        """Cover the last ``capacity`` steps instead: the newest samples are kept; a larger buffer has
        room for older ones (NaN until they are put), a smaller one drops the oldest."""
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 step, got {capacity}")
        grow = capacity - self.capacity
        if grow > 0:
            self.values = np.concatenate([np.full(grow, np.nan, dtype=np.float32), self.values])
        elif grow < 0:
            self.values = self.values[-grow:].copy()
        if self.start is not None:
            self.start -= grow * self.step
        self.capacity = capacity

    def extend(self, samples: list[tuple[float, float]]) -> None:
        for ts, value in samples:
            self.put(ts, value)

    def window(self, end: float) -> tuple[float, npt.NDArray[np.float64]]:
        """(unix time of the first slot, values) up to the slot holding ``end``; empty before any put."""
        if self.start is None:
            return end, np.empty(0)
        last = min(
            self.capacity, int((math.floor(end / self.step) * self.step - self.start) // self.step) + 1
        )
        return self.start, self.values[: max(last, 0)].astype(np.float64)

    def last_time(self) -> float | None:
        if self.start is None:
            return None
        filled = np.flatnonzero(~np.isnan(self.values))
        return None if filled.size == 0 else self.start + float(filled[-1]) * self.step


def release_memory() -> None:
    """Hand freed heap back to the system after a large history load (glibc keeps it otherwise)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def bucketed(samples: list[tuple[float, float]], step: int) -> list[tuple[float, float]]:
    """A rate evaluated at ``t`` averages the window ending at ``t``: file it under the bucket it
    describes, the one that starts a step earlier."""
    return [(t - step, v) for t, v in samples]
