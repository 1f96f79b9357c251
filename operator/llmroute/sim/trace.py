"""Traffic traces: the per-minute CSV format of ``traces/`` and turning it into demand in requests/s.

Format: ``timestamp,requests[,input_tokens,output_tokens]`` with one row per minute (ISO-8601 UTC). A file
with a ``client`` column may hold one row per client and minute; the rows of a minute are summed. Minutes
missing from the file and minutes whose cells are empty (``2025-03-06T07:00:00Z,,,``) are missing data
(NaN), never zero traffic: the source had a collection gap there. With a ``client`` column, a minute is
known in a column only when none of its rows has an empty cell there (the other clients' rows are only part
of its traffic); a client without a row sent nothing that minute. How each cell is checked and what is
refused: :mod:`~.tracecsv`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import numpy as np

from llmroute.core.series import FloatArray
from llmroute.sim.tracecsv import TraceError, read_rows
from llmroute.spec.times import rfc3339

DEFAULT_TRACE = "servegen_mlarge_days00-06.csv"


@dataclass(frozen=True)
class Trace:
    """A per-minute trace from ``start``: ``requests``, and the token columns when present."""

    name: str
    start: datetime
    requests: FloatArray
    input_tokens: FloatArray | None = None
    output_tokens: FloatArray | None = None
    clients: dict[str, FloatArray] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what the reader adjusted in the file (see llmroute.sim.tracecsv)

    @property
    def minutes(self) -> int:
        return int(self.requests.shape[0])

    def time_at(self, index: int) -> datetime:
        return self.start + timedelta(minutes=index)

    def head(self, minutes: int) -> Trace:
        """The first ``minutes`` of the trace."""
        return self.cut(0, minutes)

    def cut(self, first: int, minutes: int, name: str | None = None) -> Trace:
        """``minutes`` of the trace from minute ``first`` (a trace of its own: it starts there)."""
        cut = slice(first, first + minutes)
        return Trace(
            self.name if name is None else name,
            self.time_at(first),
            self.requests[cut],
            None if self.input_tokens is None else self.input_tokens[cut],
            None if self.output_tokens is None else self.output_tokens[cut],
            {k: v[cut] for k, v in self.clients.items()},
            self.notes,
        )


def default_trace() -> Path:
    """The trace shipped with the package (Alibaba ServeGen M-large, 7 days; see ``data/traces/NOTICE``)."""
    return Path(str(resources.files("llmroute") / "data" / "traces" / DEFAULT_TRACE))


def read_trace(path: str | Path) -> Trace:
    """Read a trace file (checked as :mod:`llmroute.sim.tracecsv` says; what the reader adjusted is in
    :attr:`Trace.notes`); raises :class:`~llmroute.sim.tracecsv.TraceError` (a ``ValueError``) naming the
    line and column of malformed input, or when no minute has a value in ``requests``, and ``OSError``."""
    path = Path(path)
    rows = read_rows(path)
    first, last = min(rows.minutes), max(rows.minutes)
    size = last - first + 1

    def column(name: str) -> FloatArray | None:
        if name not in rows.fields:
            return None
        out = np.full(size, np.nan)
        for minute, slot in rows.minutes.items():
            out[minute - first] = slot.get(name, math.nan)
        return out

    requests = column("requests")
    assert requests is not None
    if np.isnan(requests).all():
        why = (
            "every minute has a row with an empty requests cell"
            if rows.clients is not None
            else "every requests cell is empty"
        )
        raise TraceError(f"{path}: {why}: no minute has data")
    clients: dict[str, FloatArray] = {}
    for name, series in (rows.clients or {}).items():
        arr = np.where(np.isnan(requests), np.nan, 0.0)  # a client without a row sent nothing that minute
        for minute, v in series.items():  # NaN where its cell is empty
            arr[minute - first] = v
        clients[name] = arr
    start = datetime.fromtimestamp(first * 60, UTC)
    notes = tuple(rows.notes)
    return Trace(path.name, start, requests, column("input_tokens"), column("output_tokens"), clients, notes)


def gaps(trace: Trace) -> list[tuple[int, int]]:
    """The runs of minutes without a ``requests`` value, as (first minute index, length)."""
    missing = np.concatenate(([False], np.isnan(trace.requests), [False]))
    edges = np.flatnonzero(np.diff(missing.astype(np.int8)))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def known_part(trace: Trace) -> tuple[Trace, list[str]]:
    """``trace`` without the minutes before its first and after its last minute with data (there is
    nothing to replay there), and a note for each cut and for the gaps left inside; raises ``ValueError``
    when no minute has data."""
    runs = gaps(trace)
    if runs and runs[0] == (0, trace.minutes):
        raise ValueError(f"{trace.name}: none of its {trace.minutes} minutes has data")
    first = runs[0][1] if runs and runs[0][0] == 0 else 0
    end = runs[-1][0] if runs and sum(runs[-1]) == trace.minutes else trace.minutes
    notes = []
    if first:
        notes.append(
            f"the first {first} minute(s) have no data: replaying from {_stamp(trace.time_at(first))}"
        )
    if end < trace.minutes:
        notes.append(
            f"the last {trace.minutes - end} minute(s) have no data: replaying to "
            f"{_stamp(trace.time_at(end - 1))}"
        )
    inner = [r for r in runs if r[0] > 0 and sum(r) < trace.minutes]
    if inner:
        at, longest = max(inner, key=lambda r: r[1])
        notes.append(
            f"{sum(n for _, n in inner)} minute(s) in {len(inner)} gap(s) have no data (longest: {longest} "
            f"from {_stamp(trace.time_at(at))}): read as missing, not as zero"
        )
    if first or end < trace.minutes:
        trace = trace.cut(first, end - first)
    return trace, notes


def _stamp(when: datetime) -> str:
    return rfc3339(when)


def demand_rps(
    trace: Trace, *, capacity_rps: float, peak_replicas: float | None = None, peak_rps: float | None = None
) -> FloatArray:
    """Requests/s per minute, scaled so the busiest minute needs ``peak_replicas`` (or is ``peak_rps``)."""
    rps = trace.requests / 60.0
    peak = float(np.nanmax(rps)) if np.any(~np.isnan(rps)) else 0.0
    if peak <= 0:
        return rps
    if peak_replicas is not None:
        return rps * (peak_replicas * capacity_rps / peak)
    if peak_rps is not None:
        return rps * (peak_rps / peak)
    return rps
