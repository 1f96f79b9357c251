"""The capacity model: replicas that start, become ready after a delay, and serve a fixed request rate.

A decision at the start of minute ``t`` sets the replica count for that minute. New replicas serve after
``startup_seconds``; a replica that becomes ready part-way through a minute counts for that fraction of it.
Scaling down removes replicas at once, the newest (least ready) first. Replicas present at the start of the
trace are ready. Cost is counted on replicas that exist, ready or not (``replica-minutes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from llmroute.core.series import FloatArray

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class CapacityModel:
    capacity_rps: float = 50.0
    startup_seconds: float = 60.0


def ready_replicas(desired: IntArray, startup_seconds: float) -> FloatArray:
    """Time-averaged ready replicas in each minute for the replica counts ``desired``."""
    n = int(desired.shape[0])
    out = np.zeros(n)
    if n == 0:
        return out
    settled = int(desired[0])  # replicas certainly ready
    runs: list[list[float]] = []  # [start seconds, count] of replicas still starting, oldest first
    for t in range(n):
        now = 60.0 * t
        want = int(desired[t])
        total = settled + sum(int(c) for _, c in runs)
        if want > total:
            runs.append([now, float(want - total)])
        elif want < total:
            drop = total - want
            while drop > 0 and runs:
                take = min(drop, int(runs[-1][1]))
                runs[-1][1] -= take
                drop -= take
                if runs[-1][1] <= 0:
                    runs.pop()
            settled -= drop
        ready = float(settled)
        keep: list[list[float]] = []
        for start, count in runs:
            at = start + startup_seconds
            if at <= now:
                settled += int(count)
                ready += count
            else:
                ready += count * min(1.0, max(0.0, (now + 60.0 - at) / 60.0))
                keep.append([start, count])
        runs = keep
        out[t] = ready
    return out


@dataclass(frozen=True)
class PolicyMetrics:
    """How a policy did: cost, shortfall and churn."""

    replica_minutes: float
    under_minutes: int
    unserved_share: float
    scale_events: int
    events_per_hour: float
    peak_replicas: int
    mean_replicas: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "replica_minutes": round(self.replica_minutes, 1),
            "under_provisioned_minutes": self.under_minutes,
            "unserved_share": round(self.unserved_share, 6),
            "scale_events": self.scale_events,
            "scale_events_per_hour": round(self.events_per_hour, 3),
            "peak_replicas": self.peak_replicas,
            "mean_replicas": round(self.mean_replicas, 3),
        }


def shortfall(demand: FloatArray, ready: FloatArray, capacity_rps: float) -> FloatArray:
    """Demand above ready capacity in each minute (req/s, 0 where covered or unknown)."""
    gap = np.nan_to_num(demand, nan=0.0) - ready * capacity_rps
    return np.where(gap > 1e-9 * np.maximum(1.0, capacity_rps), gap, 0.0)


def measure(demand: FloatArray, desired: IntArray, model: CapacityModel) -> tuple[PolicyMetrics, FloatArray]:
    """Metrics of the replica counts ``desired`` against ``demand``; also returns the ready replicas."""
    ready = ready_replicas(desired, model.startup_seconds)
    gap = shortfall(demand, ready, model.capacity_rps)
    total = float(np.nansum(demand))
    n = int(desired.shape[0])
    events = int(np.count_nonzero(np.diff(desired))) if n > 1 else 0
    hours = n / 60.0
    metrics = PolicyMetrics(
        replica_minutes=float(desired.sum()),
        under_minutes=int(np.count_nonzero(gap)),
        unserved_share=float(gap.sum() / total) if total > 0 else 0.0,
        scale_events=events,
        events_per_hour=events / hours if hours > 0 else 0.0,
        peak_replicas=int(desired.max()) if n else 0,
        mean_replicas=float(desired.mean()) if n else 0.0,
    )
    return metrics, ready


NEED_CAP = 2**52  # far beyond any replica bound; keeps an absurd demand an integer (no int64 overflow)


def needed(demand: FloatArray, capacity_rps: float) -> IntArray:
    """Replicas each minute's demand needs at full capacity (NaN demand needs nothing; capped at 2**52)."""
    d = np.nan_to_num(demand, nan=0.0)
    return np.minimum(np.ceil(d / capacity_rps - 1e-9), NEED_CAP).astype(np.int64)


def lead_minutes(startup_seconds: float) -> int:
    return math.ceil(startup_seconds / 60.0 - 1e-9)
