"""Reading a trace file: its CSV rows checked cell by cell, with a note for everything the reader adjusted.

The rows are read by the standard library's :mod:`csv` (quoted cells, CRLF line endings). What is
accepted, and said in :attr:`Rows.notes` when it is not the documented format exactly:

* UTF-8 with or without a byte-order mark; gzip, told by the file's first bytes rather than its name;
* header names compared without surrounding spaces and case, in any order; other columns are ignored
  (noted); a name given twice is refused;
* empty lines and rows of separators only (``,,,``) are skipped, before the header too (the latter noted
  when after it);
* an ISO-8601 ``timestamp`` at the start of a minute (extended ``2025-03-03T00:00:00Z`` or basic
  ``20250303T0000Z`` format, ``T`` and ``Z`` in either case); one with an offset other than UTC is
  converted (noted), one without an offset is read as UTC (noted);
* rows out of time order are read in time order (noted); a minute (and client) given twice with the same
  values is kept once (noted).

Everything else is refused with :class:`TraceError`, naming the line and column: a row with more or fewer
fields than the header, a time that is not ISO-8601 or not on a minute (in UTC too: an offset with
seconds), a cell that is not empty and not a finite decimal number from 0 to :data:`MAX_CELL` (``nan``,
``NA``, ``-5``, ``1e300``, ``1_000``), a date without a time of day, a time within a day of the calendar's
ends (year 1 or 9999: a time zone could take it out of range), a minute given twice with other values,
three rows or more all a multiple of ``k > 1`` minutes apart (another resolution), a span of more than
:data:`MAX_SPAN_DAYS` (a mistyped date), a file that is not UTF-8 text (bzip2, xz, zstd, zip and UTF-16
named as such) or not CSV (an unclosed quote), a damaged gzip stream (checked to its end before any row is
read, so that its garbage is not refused as something else).
An empty cell is a minute without data, not zero; a minute without a row is one too. With a ``client``
column, a minute is known in a column only when none of its rows has an empty cell there: the other
clients' rows are only part of its traffic (a client without a row sent nothing that minute).
"""

from __future__ import annotations

import csv
import gzip
import itertools
import math
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from llmroute.spec.times import epoch_rfc3339

COLUMNS = ("requests", "input_tokens", "output_tokens")
KNOWN = ("timestamp", "client", *COLUMNS)
GZIP_MAGIC = b"\x1f\x8b"
# what a file that is not a trace often is, by its first bytes: said by name instead of "not UTF-8 text"
OTHER_FORMATS = {
    re.compile(rb"BZh[1-9]1AY&SY"): "bzip2-compressed; decompress it or gzip it",  # header + block magic
    re.compile(rb"\xfd7zXZ\x00"): "xz-compressed; decompress it or gzip it",
    re.compile(rb"\(\xb5/\xfd"): "zstd-compressed; decompress it or gzip it",
    re.compile(rb"PK\x03\x04"): "a zip archive; extract the CSV (a plain or gzipped file is read)",
    re.compile(rb"\xff\xfe|\xfe\xff"): "UTF-16 text; save the trace as UTF-8 CSV",
}
MAX_SPAN_DAYS = 366
MAX_CELL = 1e15  # per minute: ~1.7e13 a second is no real service; a year of such minutes still sums finite
DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")  # a number as CSV tools write it
# a time from FIRST_TIME to LAST_TIME can be shown in any time zone (as a report's wall-clock hours are)
FIRST_TIME = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
LAST_TIME = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
SHOWN_IGNORED = 5  # ignored columns named in the note; the rest counted


class TraceError(ValueError):
    """A trace file that cannot be read as the format says, as one line naming the file, line and column."""


@dataclass
class Rows:
    """The cells of a trace file by minute since the epoch: values summed per minute and column.

    ``fields``: the value columns present (of :data:`COLUMNS`); ``clients``: requests per client and minute
    when the file has a ``client`` column; ``notes``: what the reader adjusted, one sentence each. A sum
    is NaN when a row of its minute (and client) has an empty cell in the column: unknown, not zero.
    """

    fields: tuple[str, ...]
    minutes: dict[int, dict[str, float]] = field(default_factory=dict)
    clients: dict[str, dict[int, float]] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Seen:
    """Per (minute, client): the first line and its values, to tell a repeated row from a conflicting one."""

    rows: dict[tuple[int, str | None], tuple[int, tuple[float, ...]]] = field(default_factory=dict)
    repeated: int = 0
    first_repeat: str = ""


def _stamp(minute: int) -> str:
    return epoch_rfc3339(minute * 60)


def _open(path: Path) -> IO[str]:
    with path.open("rb") as raw:
        head = raw.read(10)
    for magic, what in OTHER_FORMATS.items():
        if magic.match(head):
            raise TraceError(f"{path}: {what}")
    if head.startswith(GZIP_MAGIC):
        _check_gzip(path)
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _check_gzip(path: Path) -> None:
    """Decompress ``path`` once to its end (in bounded chunks), so that a damaged stream is reported as
    one: read as it goes, its garbage bytes would reach the CSV reader before the CRC check and be
    refused as whatever they look like (not UTF-8, a line of the wrong width). Raises what :mod:`gzip`
    raises for a damaged stream."""
    with gzip.open(path, "rb") as stream:
        while stream.read(1 << 20):
            pass


def read_rows(path: Path) -> Rows:
    """The rows of the trace file at ``path``; raises :class:`TraceError` (and ``OSError``)."""
    try:
        with _open(path) as handle:
            return _parse(path, handle)
    except UnicodeDecodeError as exc:
        raise TraceError(f"{path}: not UTF-8 text ({exc.reason}); save the trace as UTF-8 CSV") from exc
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise TraceError(f"{path}: damaged gzip stream ({exc or 'it ends early'})") from exc


def _header(path: Path, header: list[str] | None, line: int) -> dict[str, int]:
    """Column name -> index of ``header`` (the first row with a cell that is not blank, at ``line``)."""
    if header is None:
        raise TraceError(f"{path}: empty file" + (f" ({line} blank line(s), no header)" if line else ""))
    names = [h.strip().lower() for h in header]
    for i, name in enumerate(names):
        if name in KNOWN and name in names[:i]:
            raise TraceError(f"{path}:{line}: column {name!r} appears twice in the header")
    missing = [c for c in ("timestamp", "requests") if c not in names]
    if missing:
        shown = ",".join(header)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise TraceError(
            f"{path}:{line}: no {' or '.join(missing)} column in the header {shown!r}; a trace is"
            " comma-separated with the header timestamp,requests[,input_tokens,output_tokens]"
        )
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)
    return index


def _minute(cell: str) -> tuple[int, str]:
    """The minute since the epoch of a ``timestamp`` cell and how its zone was given (utc, naive, offset)."""
    text = cell.strip()
    if not text:
        raise ValueError("empty")
    try:  # RFC 3339 allows a lower-case z, which Python 3.11 does not read
        when = datetime.fromisoformat(text[:-1] + "Z" if text[-1] == "z" else text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time") from None
    if _is_date(text):  # a day, not a minute (Python reads it as its midnight)
        raise ValueError(f"{text} is a date without a time of day (one row per minute bucket)")
    zone = "naive" if when.tzinfo is None else "utc" if when.utcoffset() == timedelta(0) else "offset"
    if when.second or when.microsecond:
        raise ValueError(f"{text} is not the start of a minute (one row per minute bucket)")
    try:
        utc = when.replace(tzinfo=when.tzinfo or UTC).astimezone(UTC)
    except OverflowError:  # an offset that takes year 1 or 9999 out of range
        raise ValueError(f"{text} is out of range in UTC") from None
    if not FIRST_TIME <= utc <= LAST_TIME:
        raise ValueError(
            f"{text} is within a day of the calendar's end (year 1 or 9999): not every time zone can show it"
        )
    if utc.second or utc.microsecond:  # an offset with seconds
        raise ValueError(f"{text} is not the start of a minute in UTC (its offset has seconds)")
    return int(utc.timestamp()) // 60, zone


def _is_date(text: str) -> bool:
    """Whether ``text`` is an ISO-8601 date alone (``2025-03-03``, ``20250303``, ``2025-W10-1``)."""
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _value(cell: str) -> float:
    """A value cell: NaN when empty (no data), else a finite number >= 0."""
    text = cell.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number (an empty cell marks a minute without data)")
    if value is None or not DECIMAL.fullmatch(text):  # Python's float() also reads 1_000 and non-ASCII digits
        raise ValueError(f"{text!r} is not a number (an empty cell marks a minute without data)")
    if value < 0:
        raise ValueError(f"{text} is negative")
    if value > MAX_CELL:
        raise ValueError(f"{text} is more than {MAX_CELL:g} in one minute (a mistyped value?)")
    return value


def _parse(path: Path, handle: IO[str]) -> Rows:
    reader = csv.reader(handle, strict=True)
    try:
        return _rows(path, reader)
    except csv.Error as exc:
        raise TraceError(f"{path}:{max(1, reader.line_num)}: not CSV ({exc})") from exc


def _rows(path: Path, reader: Any) -> Rows:
    """The rows of ``reader`` (a ``csv.reader``: its ``line_num`` names the lines) checked one by one."""
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    index = _header(path, header, reader.line_num)
    width = len(header or ())
    ignored = [n or f"(unnamed column {index[n] + 1})" for n in index if n not in KNOWN]
    rows = Rows(tuple(c for c in COLUMNS if c in index), clients={} if "client" in index else None)
    if ignored:
        more = len(ignored) - SHOWN_IGNORED
        named = ", ".join(ignored[:SHOWN_IGNORED]) + (f" and {more} more" if more > 0 else "")
        rows.notes.append(f"columns ignored: {named}")
    seen = _Seen()
    zones: dict[str, int] = {}  # how timestamps give their zone -> the first line doing so
    separators = unordered = 0
    first = last = (0, 0)  # (minute, line) of the earliest and the latest row
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            separators += len(row) > 1
            continue
        if len(row) != width:
            hint = " (an unquoted thousands separator?)" if len(row) > width else ""
            raise TraceError(f"{path}:{line}: {len(row)} fields where the header has {width}{hint}")
        column = "timestamp"
        try:
            minute, zone = _minute(row[index["timestamp"]])
            values: dict[str, float] = {}
            for column in rows.fields:
                values[column] = _value(row[index[column]])
        except ValueError as exc:
            raise TraceError(f"{path}:{line}: column {column}: {exc}") from None
        client = (row[index["client"]].strip() or "-") if rows.clients is not None else None
        if _repeated(path, line, seen, (minute, client), tuple(values.values())):
            continue
        zones.setdefault(zone, line)
        if not rows.minutes:
            first = last = (minute, line)
        elif minute < last[0] and not unordered:
            unordered = line
        first, last = min(first, (minute, line)), max(last, (minute, line))
        _add(rows, minute, client, values)
    if not rows.minutes:
        raise TraceError(f"{path}: no data rows after the header")
    _check_spacing(path, rows, first, last)
    if separators:
        rows.notes.append(f"skipped {separators} row(s) of empty cells only")
    if "naive" in zones:
        rows.notes.append(f"timestamps without a UTC offset (line {zones['naive']}) read as UTC")
    if "offset" in zones:
        rows.notes.append(
            f"timestamps with a UTC offset other than 0 (line {zones['offset']}) converted to UTC"
        )
    if unordered:
        rows.notes.append(
            f"rows are not in time order (line {unordered} goes back in time): read in time order"
        )
    if seen.repeated:
        rows.notes.append(
            f"{seen.repeated} row(s) repeat an earlier row exactly ({seen.first_repeat}): kept once"
        )
    return rows


def _repeated(
    path: Path, line: int, seen: _Seen, key: tuple[int, str | None], values: tuple[float, ...]
) -> bool:
    """Whether the row at ``line`` repeats an earlier one exactly; raises if it conflicts with one."""
    earlier = seen.rows.get(key)
    if earlier is None:
        seen.rows[key] = (line, values)
        return False
    first, before = earlier
    same = all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(before, values, strict=True))
    who = "" if key[1] is None else f" for client {key[1]!r}"
    if not same:
        raise TraceError(
            f"{path}:{line}: minute {_stamp(key[0])}{who} is already on line {first} with other values"
        )
    seen.repeated += 1
    seen.first_repeat = seen.first_repeat or f"line {line} repeats line {first}"
    return True


def _add(rows: Rows, minute: int, client: str | None, values: dict[str, float]) -> None:
    slot = rows.minutes.setdefault(minute, {})
    for c, v in values.items():  # an empty cell (NaN) makes the minute's sum NaN: part of it is unknown
        slot[c] = slot.get(c, 0.0) + v
    if rows.clients is not None and client is not None:
        series = rows.clients.setdefault(client, {})
        series[minute] = series.get(minute, 0.0) + values["requests"]


def _check_spacing(path: Path, rows: Rows, earliest: tuple[int, int], latest: tuple[int, int]) -> None:
    """Refuse rows on a coarser grid than minutes (three rows or more, all a multiple of ``k > 1`` minutes
    apart: another resolution) and a span beyond MAX_SPAN_DAYS."""
    (first, first_line), (last, last_line) = earliest, latest
    if last - first + 1 > MAX_SPAN_DAYS * 1440:
        days, minutes_over = divmod(last - first + 1, 1440)
        span = f"{days:,} days" + (f" and {minutes_over} minute(s)" if minutes_over else "")
        raise TraceError(
            f"{path}: the rows cover {last - first + 1:,} minutes ({span}), from {_stamp(first)} (line "
            f"{first_line}) to {_stamp(last)} (line {last_line}); a trace spans at most {MAX_SPAN_DAYS} days"
            " (a mistyped date?)"
        )
    minutes = sorted(rows.minutes)
    if len(minutes) > 2:
        step = math.gcd(*(b - a for a, b in itertools.pairwise(minutes)))
        if step > 1:
            raise TraceError(
                f"{path}: the rows are {step} minutes apart (or a multiple of it): the format has one row per"
                " minute; a minute without data is a row with empty cells, or no row"
            )
