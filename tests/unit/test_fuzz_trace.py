"""Property tests of the trace reader with generated files: any bytes (plain or gzipped) give a
:class:`Trace` or a :class:`TraceError`, never another exception; a generated CSV with the right header
is read cell for cell (a blank cell is a missing minute, never 0) or refused naming its line."""

from __future__ import annotations

import gzip
import math
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmroute.sim.trace import Trace, read_trace
from llmroute.sim.tracecsv import TraceError

SETTINGS = settings(max_examples=200)  # the rest: the llmroute profile (tests/unit/conftest.py)
HEADER = "timestamp,requests,input_tokens,output_tokens"
LINE = re.compile(r":(\d+): ")


@contextmanager
def trace_file(content: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_bytes(content)
        yield path


def read(content: bytes) -> Trace | TraceError:
    with trace_file(content) as path:
        try:
            return read_trace(path)
        except TraceError as exc:
            assert str(exc).startswith(str(path)), exc
            return exc


@SETTINGS
@given(st.binary(max_size=400), st.booleans(), st.sampled_from([b"", HEADER.encode() + b"\n"]))
def test_any_bytes_give_a_trace_or_a_trace_error(data: bytes, zipped: bool, head: bytes) -> None:
    content = head + data
    out = read(gzip.compress(content) if zipped else content)
    if isinstance(out, Trace):
        assert out.minutes >= 1 and not np.isnan(out.requests).all()
    if zipped:  # the file's first bytes tell gzip, whatever its name: the same answer as the plain file
        plain = read(content)
        assert type(plain) is type(out)
        if isinstance(out, TraceError) and not content.startswith(b"\x1f\x8b"):  # not gzip in gzip
            assert _after_path(plain) == _after_path(out)


def _after_path(exc: TraceError | Trace) -> str:
    return str(exc).split("t.csv", 1)[1]


@SETTINGS
@given(st.binary(min_size=1, max_size=200))
def test_a_damaged_gzip_stream_is_a_trace_error(tail: bytes) -> None:
    whole = gzip.compress((HEADER + "\n2025-03-03T00:00:00Z,1,2,3\n").encode())
    damaged = whole[: len(whole) // 2] + tail
    out = read(damaged)
    assert isinstance(out, TraceError), out  # half a stream never passes its length and CRC check
    assert "damaged gzip stream" in str(out), out


CELL = st.one_of(
    st.just(""),
    st.just(" "),
    st.integers(0, 10**6).map(str),
    st.floats(0, 1e15).map(repr),
    st.sampled_from(["nan", "NA", "-1", "1e300", "inf", "0x10", "1,000", "١٢", "1_000", '"7"', "\x00"]),
)


@st.composite
def trace_csvs(draw: st.DrawFn) -> tuple[str, list[tuple[int, list[str]]]]:
    """A CSV with the documented header: one row per minute offset (maybe out of order, maybe
    repeated, with blank lines in between), each three value cells."""
    offsets = draw(st.lists(st.integers(0, 30), min_size=1, max_size=25))
    rows = [(m, [draw(CELL) for _ in range(3)]) for m in offsets]
    lines = [HEADER]
    for m, cells in rows:
        lines += [""] * draw(st.integers(0, 2))
        lines.append(f"2025-03-03T00:{m:02d}:00Z," + ",".join(cells))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n\n"])), rows


def number(cell: str) -> float | None:
    """What a well-formed cell holds: ``None`` for a cell the reader must refuse, NaN when blank."""
    text = cell.strip()
    if len(text) > 1 and text[0] == text[-1] == '"':  # a quoted cell: CSV reads what is inside
        text = text[1:-1].strip()
    if not text:
        return math.nan
    if not re.fullmatch(r"[0-9.eE+\-]+", text):  # ASCII decimal digits only (no 1_000, no ١٢)
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and 0 <= value <= 1e15 else None


@SETTINGS
@given(trace_csvs())
def test_a_generated_csv_is_read_cell_for_cell_or_refused_at_its_line(
    generated: tuple[str, list[tuple[int, list[str]]]],
) -> None:
    text, rows = generated
    out = read(text.encode())
    parsed = [(m, [number(c) for c in cells]) for m, cells in rows]
    bad = any(v is None for _, values in parsed for v in values)
    if bad:
        assert isinstance(out, TraceError), out
    if isinstance(out, TraceError):
        message = str(out)
        located = LINE.search(message)
        assert located or "minutes apart" in message or "every requests cell is empty" in message, message
        if located and "column" in message:
            line = int(located.group(1))
            assert 2 <= line <= text.count("\n") + 1
            assert re.search(r"column (timestamp|requests|input_tokens|output_tokens)", message), message
        return
    first = min(m for m, _ in rows)
    by_minute: dict[int, list[float]] = {}
    for m, values in parsed:
        by_minute.setdefault(m, [v for v in values if v is not None])  # a repeated row is kept once
    for m, known in by_minute.items():
        for column, expected in zip((out.requests, out.input_tokens, out.output_tokens), known, strict=True):
            assert column is not None
            got = column[m - first]
            if math.isnan(expected):
                assert math.isnan(got), (m, got)  # a blank cell is a missing minute, not 0
            else:
                assert got == expected
    for m in range(first, max(by_minute) + 1):
        if m not in by_minute:
            assert math.isnan(out.requests[m - first])  # a minute without a row is missing too


@settings(max_examples=5)
@given(st.integers(10_000, 200_000), st.sampled_from(["\n", "\r\n", ",,,\n"]))
def test_a_file_of_blank_lines_is_read_past(blank: int, line: str) -> None:
    content = (HEADER + "\n" + line * blank + "2025-03-03T00:00:00Z,5,,\n").encode()
    out = read(content)
    assert isinstance(out, Trace), out
    assert out.requests.tolist() == [5.0]
    assert out.input_tokens is not None and math.isnan(out.input_tokens[0])
    empty = read((HEADER + "\n" + line * blank).encode())
    assert isinstance(empty, TraceError)


STAMPS = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:00-14:00",
            "2025-03-03",
            "2025-03-03T00:00:30Z",
            "2025-03-03T00:00",
            "20250303T0000",
            "2025-13-01T00:00:00Z",
            "2025-03-03T00:00:00+23:59",
            "1970-01-01T00:00:00Z",
            "",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.text(max_size=25),
)


@SETTINGS
@given(st.lists(STAMPS, min_size=1, max_size=4))
def test_any_timestamp_gives_a_trace_or_an_error_at_its_line(stamps: list[str]) -> None:
    lines = [HEADER, *(f"{stamp.replace(',', ' ')},1,2,3" for stamp in stamps)]
    out = read("\n".join(lines).encode())
    if isinstance(out, TraceError):
        message = str(out)
        assert LINE.search(message) or re.search(r"t\.csv: (the rows|no data|every)", message), message
    else:
        assert out.minutes >= 1 and out.minutes <= 367 * 1440


@pytest.mark.parametrize("cell", ["1_000", "١٢", "\uff11\uff12", "0x10", "1e5_0"])
def test_a_value_cell_is_an_ascii_decimal_number(cell: str) -> None:
    """Found by the properties above: Python's float() also reads digit-group underscores and non-ASCII
    digits, which no CSV tool writes as a number."""
    out = read((HEADER + f"\n2025-03-03T00:00:00Z,{cell},,\n").encode())
    assert isinstance(out, TraceError)
    assert ":2: column requests:" in str(out) and "is not a number" in str(out), out


def test_a_truncated_gzip_stream_is_reported_as_one() -> None:
    """Found by the properties above: the garbage of a damaged stream was refused as non-UTF-8 text."""
    whole = gzip.compress((HEADER + "\n" + "2025-03-03T00:00:00Z,1,2,3\n" * 50).encode())
    out = read(whole[: len(whole) // 2] + b"\x0e\x00")
    assert isinstance(out, TraceError) and "damaged gzip stream" in str(out), out
