"""Traffic traces: the per-minute CSV format of ``traces/`` and turning it into demand in requests/s.

Format: ``timestamp,requests[,input_tokens,output_tokens]`` with one row per minute (ISO-8601 UTC). A file
with a ``client`` column may hold one row per client and minute; the rows of a minute are summed. Minutes
missing from the file and minutes whose cells are empty (``2025-03-06T07:00:00Z,,,``) are missing data
(NaN), never zero traffic: the source had a collection gap there. A minute is known when at least one of
its rows has a value in the column.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import numpy as np

from llmroute.core.series import FloatArray

DEFAULT_TRACE = "servegen_mlarge_days00-06.csv"
COLUMNS = ("requests", "input_tokens", "output_tokens")


@dataclass(frozen=True)
class Trace:
    """A per-minute trace from ``start``: ``requests``, and the token columns when present."""

    name: str
    start: datetime
    requests: FloatArray
    input_tokens: FloatArray | None = None
    output_tokens: FloatArray | None = None
    clients: dict[str, FloatArray] = field(default_factory=dict)

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
        )


def default_trace() -> Path:
    """The trace shipped with the package (Alibaba ServeGen M-large, 7 days; see ``data/traces/NOTICE``)."""
    return Path(str(resources.files("llmroute") / "data" / "traces" / DEFAULT_TRACE))


def parse_time(value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _number(value: str | None) -> float:
    if value is None or value.strip() == "":
        return math.nan
    return float(value)


def read_trace(path: str | Path) -> Trace:
    """Read a trace file; raises ``ValueError`` with the line number on malformed input."""
    path = Path(path)
    rows: dict[int, dict[str, float]] = {}
    per_client: dict[str, dict[int, float]] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        if not {"timestamp", "requests"} <= fields:
            raise ValueError(f"{path}: needs at least the columns timestamp,requests")
        has_client = "client" in fields
        for line, row in enumerate(reader, start=2):
            try:
                minute = math.floor(parse_time(row["timestamp"]).timestamp() / 60)
                values = {c: _number(row.get(c)) for c in COLUMNS if c in fields}
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{line}: {exc}") from exc
            slot = rows.setdefault(minute, {})
            for c, v in values.items():
                if not math.isnan(v):  # an empty cell adds nothing and keeps a minute missing
                    slot[c] = slot.get(c, 0.0) + v
            if has_client:
                name = row.get("client") or "-"
                per_client.setdefault(name, {})
                if not math.isnan(values["requests"]):
                    per_client[name][minute] = per_client[name].get(minute, 0.0) + values["requests"]
    if not rows:
        raise ValueError(f"{path}: no rows")
    first, last = min(rows), max(rows)
    size = last - first + 1

    def column(name: str) -> FloatArray | None:
        if name not in fields:
            return None
        out = np.full(size, np.nan)
        for minute, slot in rows.items():
            out[minute - first] = slot.get(name, math.nan)
        return out

    requests = column("requests")
    assert requests is not None
    clients: dict[str, FloatArray] = {}
    for name, series in per_client.items():
        arr = np.where(np.isnan(requests), np.nan, 0.0)  # a client without a row sent nothing that minute
        for minute, v in series.items():
            arr[minute - first] = v
        clients[name] = arr
    start = datetime.fromtimestamp(first * 60, UTC)
    return Trace(path.name, start, requests, column("input_tokens"), column("output_tokens"), clients)


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
