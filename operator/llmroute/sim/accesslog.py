"""Read access-log lines (format: :mod:`llmroute.spec.accesslog`) from files or stdin, streaming.

Files may be gzip-compressed (told by their first bytes, not their name) and ``-`` is stdin. A line may
carry a prefix before its JSON object (the container runtime's ``<time> stdout F`` in
``/var/log/containers``, ``kubectl logs --timestamps``): the object from the first ``{`` is read.

Skipped and counted, with the first of each kind kept as an example (bad input is reported, never lost
silently): lines that are not access-log objects (other logs, a truncated last line), lines of a newer
format version or a time that is not one (counted by the field too) and the end of a gzip stream that
stops early or is corrupt. A time with another UTC offset is read and rewritten to UTC. The other fields
are checked where they are read (:meth:`llmroute.sim.logstats.LogStats.add`; the caller skips the record
and names the field with :func:`llmroute.spec.accesslog.problem`).

Several sources are merged by time (each pod's log is in time order), so what is read comes out in time
order with memory bounded by one line per source; records out of order inside one source are handled by
:mod:`llmroute.sim.logstats`.
"""

from __future__ import annotations

import gzip
import heapq
import io
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from llmroute.spec.accesslog import BAD_VERSION, VERSION, time_problem

Record = dict[str, Any]
GZIP_MAGIC = b"\x1f\x8b"
BAD_FIELD = "bad time or field"
DAMAGED_GZIP = "gzip stream ends early or is corrupt"


@dataclass
class ReadStats:
    """What reading saw: lines read, records accepted, and the lines skipped by reason (with an example
    ``file:line`` of each reason); records skipped for a bad field are also counted by that field."""

    lines: int = 0
    records: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    bytes_total: int = 0  # size of the named files (0 for stdin)
    fields: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.examples.setdefault(reason, where)

    def skip_field(self, said: str, where: str) -> None:
        """Count a record skipped for the field ``said`` names (``"<field>: <what it must be>"``)."""
        name = said.partition(":")[0]
        self.fields[name] = self.fields.get(name, 0) + 1
        self.skip(BAD_FIELD, f"{where} ({said})")

    def summary(self) -> str:
        """One line: lines read, records, and what was skipped by reason with an example of each."""
        out = f"{self.lines:,} lines, {self.records:,} records"
        if not self.skipped:
            return out + ", none skipped"
        reasons = "; ".join(f"{r} {n:,} (e.g. {self.examples[r]})" for r, n in self.skipped.items())
        return f"{out}, {sum(self.skipped.values()):,} skipped: {reasons}"


def _open(name: str) -> tuple[Iterable[bytes], Any]:
    """The decompressed lines of ``name`` (``-``: stdin) and the file to close after them (``None`` for
    stdin); raises ``OSError``."""
    raw: Any
    if name == "-":
        stdin: Any = sys.stdin.buffer
        raw = stdin if isinstance(stdin, io.BufferedReader) else io.BufferedReader(stdin)
        head, owned = raw.peek(2)[:2], None
    else:
        raw = owned = Path(name).open("rb")  # noqa: SIM115 - closed by the reader
        head = raw.read(2)
        raw.seek(0)
    lines: Iterable[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if head == GZIP_MAGIC else raw
    return lines, owned


FUTURE = "time in the future"


def _records(name: str, stats: ReadStats, not_after: str | None) -> Iterator[Record]:
    stream, owned = _open(name)
    loads, newest, check = orjson.loads, VERSION, time_problem
    number = 0
    try:
        for number, line in enumerate(stream, start=1):
            stats.lines += 1
            if line[:1] != b"{":
                brace = line.find(b"{")
                if brace < 0:
                    if line.strip():
                        stats.skip("not an access-log line", f"{name}:{number}")
                    continue
                line = line[brace:]
            try:
                record = loads(line)
            except orjson.JSONDecodeError:
                stats.skip("malformed JSON", f"{name}:{number}")
                continue
            if not isinstance(record, dict) or "v" not in record or not isinstance(record.get("time"), str):
                stats.skip("not an access-log line", f"{name}:{number}")
                continue
            v = record["v"]
            if v.__class__ is not int or v < 1:
                stats.skip_field(BAD_VERSION, f"{name}:{number}")
                continue
            if v > newest:  # its fields may mean what this reader does not know
                stats.skip(f"format version newer than {newest}", f"{name}:{number}")
                continue
            said = check(record)  # the other fields are checked where they are read (LogStats.add)
            if said is not None:
                stats.skip_field(said, f"{name}:{number}")
                continue
            if not_after is not None and record["time"] > not_after:
                stats.skip(FUTURE, f"{name}:{number}")
                continue
            stats.records += 1
            yield record
    except (EOFError, zlib.error, gzip.BadGzipFile):  # a file still being written or copied: keep the rest
        stats.skip(DAMAGED_GZIP, f"{name}:{number + 1}")
    finally:
        if isinstance(stream, gzip.GzipFile):
            stream.close()  # leaves the file under it open
        if owned is not None:
            owned.close()


def _time(record: Record) -> str:
    value: str = record["time"]
    return value


def read(names: Sequence[str], stats: ReadStats, not_after: str | None = None) -> Iterator[Record]:
    """Access-log records of every source in ``names`` (``-`` is stdin), merged in time order; raises
    ``OSError`` for a source that cannot be opened (before anything is read). Records timed after
    ``not_after`` (the contract's time form) are skipped as :data:`FUTURE`: a clock far ahead would
    otherwise stretch the report to its date."""
    for name in names:
        if name != "-":
            stats.bytes_total += Path(name).stat().st_size
    streams = [_records(name, stats, not_after) for name in names]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=_time)  # the RFC 3339 UTC times sort as strings


class ReadProgress:
    """Reports lines read and lines per second to ``out`` (stderr) at most every ``every`` seconds."""

    def __init__(self, stats: ReadStats, out: Callable[[str], None], every: float = 2.0) -> None:
        self.stats, self.out, self.every = stats, out, every
        self.started = self.last = time.monotonic()

    def tick(self) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            rate = self.stats.lines / max(now - self.started, 1e-9)
            self.out(f"read {self.stats.lines:,} lines ({rate:,.0f} lines/s)")

    def rate(self) -> float:
        return self.stats.lines / max(time.monotonic() - self.started, 1e-9)


def with_progress(
    records: Iterator[Record], progress: ReadProgress | None, every: int = 65536
) -> Iterator[Record]:
    """``records`` unchanged, calling ``progress.tick()`` every ``every`` records."""
    if progress is None:
        yield from records
        return
    count = 0
    for record in records:
        count += 1
        if count >= every:
            count = 0
            progress.tick()
        yield record
