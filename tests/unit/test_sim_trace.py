"""The trace reader on files as users have them: what it accepts (saying what it adjusted), what it refuses
(one line naming the file, line and column), and how `llmroute simulate` treats minutes without data.

The documented format and the blank-cell and client cases are in ``test_sim.py``; these are the others.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import math
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from llmroute.cli.main import main
from llmroute.sim.report import analyse
from llmroute.sim.trace import Trace, gaps, known_part, read_trace
from llmroute.sim.tracecsv import TraceError

H = "timestamp,requests,input_tokens,output_tokens"
NAN = math.nan


def body(*cells: str, eol: str = "\n") -> str:
    """A header and rows (``None`` in a row's place: the line is left out)."""
    return eol.join((H, *cells)) + eol


ROWS = ("2025-03-03T00:00:00Z,5,50,5", "2025-03-03T00:01:00Z,6,60,6", "2025-03-03T00:02:00Z,7,70,7")
PLAIN = body(*ROWS)
QUOTED = '"timestamp","requests","input_tokens","output_tokens"\n' + "".join(
    '"' + r.replace(",", '","') + '"\n' for r in ROWS
)

# id, file content, requests read, a note the reader must give (None: no note at all)
ACCEPTED: list[tuple[str, str | bytes, list[float], str | None]] = [
    ("documented", PLAIN, [5, 6, 7], None),
    ("CRLF line endings", body(*ROWS, eol="\r\n"), [5, 6, 7], None),
    ("UTF-8 byte-order mark", "\ufeff" + PLAIN, [5, 6, 7], None),
    ("BOM and CRLF", "\ufeff" + body(*ROWS, eol="\r\n"), [5, 6, 7], None),
    ("trailing empty lines", PLAIN + "\n\n", [5, 6, 7], None),
    ("a row of separators only", PLAIN + ",,,\n", [5, 6, 7], "skipped 1 row"),
    (
        "extra columns",
        "timestamp,requests,model,region\n2025-03-03T00:00:00Z,5,m,eu\n2025-03-03T00:01:00Z,6,m,eu\n",
        [5, 6],
        "columns ignored: model, region",
    ),
    (
        "many extra columns",
        "timestamp,requests,"
        + ",".join(f"c{i}" for i in range(500))
        + "\n"
        + "".join(f"2025-03-03T00:0{m}:00Z,{m + 5}" + ",1" * 500 + "\n" for m in range(2)),
        [5, 6],
        "columns ignored: c0, c1, c2, c3, c4 and 495 more",
    ),
    (
        "columns in another order",
        "requests,output_tokens,timestamp,input_tokens\n5,5,2025-03-03T00:00:00Z,50\n6,6,2025-03-03T00:01:00Z,60\n",
        [5, 6],
        None,
    ),
    ("quoted cells", QUOTED, [5, 6, 7], None),
    (
        "header names with spaces and capitals",
        "Timestamp, Requests ,INPUT_TOKENS,output_tokens\n" + "\n".join(ROWS) + "\n",
        [5, 6, 7],
        None,
    ),
    ("+00:00 offset", body(*(r.replace("Z", "+00:00") for r in ROWS)), [5, 6, 7], None),
    ("fractional seconds of zero", body(*(r.replace(":00Z", ":00.000Z") for r in ROWS)), [5, 6, 7], None),
    (
        "another offset, converted to UTC",
        body(*(r.replace("T00:", "T02:").replace("Z", "+02:00") for r in ROWS)),
        [5, 6, 7],
        "UTC offset other than 0 (line 2) converted to UTC",
    ),
    ("no offset, read as UTC", body(*(r.replace("Z", "") for r in ROWS)), [5, 6, 7], "(line 2) read as UTC"),
    (
        "space instead of T, no offset",
        body(*(r.replace("T", " ").replace("Z", "") for r in ROWS)),
        [5, 6, 7],
        "read as UTC",
    ),
    ("a missing row in the middle is a gap", body(ROWS[0], ROWS[2]), [5, NAN, 7], None),
    (
        "whitespace-only cell is empty",
        body(ROWS[0], "2025-03-03T00:01:00Z, ,60,6", ROWS[2]),
        [5, NAN, 7],
        None,
    ),
    ("unsorted rows", body(ROWS[1], ROWS[2], ROWS[0]), [5, 6, 7], "line 4 goes back in time"),
    ("an exact duplicate row", body(ROWS[0], ROWS[1], ROWS[1], ROWS[2]), [5, 6, 7], "line 4 repeats line 3"),
    (
        "a duplicated blank row",
        body(ROWS[0], "2025-03-03T00:01:00Z,,,", "2025-03-03T00:01:00Z,,,"),
        [5, NAN],
        "kept",
    ),
    ("fractional counts (a scaled trace)", body("2025-03-03T00:00:00Z,2.5,,", ROWS[1]), [2.5, 6], None),
    ("gzip, told by its bytes", gzip.compress(PLAIN.encode()), [5, 6, 7], None),
    (
        "ISO-8601 basic format (no separators)",
        body("20250303T000000Z,5,50,5", "20250303T0001Z,6,60,6", "20250303T000200,7,70,7"),
        [5, 6, 7],
        "(line 4) read as UTC",
    ),
    (
        "a trailing comma on every line",
        body(*(r + "," for r in ROWS)).replace(H, H + ","),
        [5, 6, 7],
        "columns ignored: (unnamed column 5)",
    ),
    ("lower-case z (RFC 3339)", body(*(r.replace("Z", "z") for r in ROWS)), [5, 6, 7], None),
    ("blank lines before the header", "\n \r\n,,,\n" + PLAIN, [5, 6, 7], None),
]


@pytest.mark.parametrize(
    ("content", "requests", "note"), [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED]
)
def test_accepted(tmp_path: Path, content: str | bytes, requests: list[float], note: str | None) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    trace = read_trace(path)
    assert trace.start == datetime(2025, 3, 3, tzinfo=UTC)
    assert np.array_equal(trace.requests, np.array(requests, dtype=float), equal_nan=True)
    if note is None:
        assert trace.notes == ()
    else:
        assert len(trace.notes) == 1 and note in trace.notes[0], trace.notes


def _zipped(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("trace.csv", text)
    return buf.getvalue()


# id, file content, the error (a regex, after the file's path)
REFUSED: list[tuple[str, str | bytes, str]] = [
    ("empty file", "", ": empty file$"),
    ("header only", H + "\n", ": no data rows after the header$"),
    ("header only, no newline", H, ": no data rows after the header$"),
    (
        "every requests cell blank",
        body("2025-03-03T00:00:00Z,,,", "2025-03-03T00:01:00Z,,1,"),
        "no minute has data",
    ),
    ("no requests column", "timestamp,input_tokens\n2025-03-03T00:00:00Z,5\n", ":1: no requests column"),
    ("semicolons", PLAIN.replace(",", ";"), ":1: no timestamp or requests column .* comma-separated"),
    ("no header", "\n".join(ROWS) + "\n", ":1: no timestamp or requests column"),
    ("JSON", '{"timestamp": "2025-03-03T00:00:00Z", "requests": 5}\n', ":1: no timestamp or requests"),
    (
        "a column twice",
        "timestamp,requests,requests\n2025-03-03T00:00:00Z,5,5\n",
        ":1: column 'requests' appears twice",
    ),
    ("a short row", body(ROWS[0], "2025-03-03T00:01:00Z,6"), ":3: 2 fields where the header has 4$"),
    ("a long row", body(ROWS[0], "2025-03-03T00:01:00Z,1,234,60,6"), ":3: 5 fields .* thousands separator"),
    (
        "non-numeric",
        body(ROWS[0], "2025-03-03T00:01:00Z,abc,60,6"),
        ":3: column requests: 'abc' is not a number",
    ),
    ("NA", body(ROWS[0], "2025-03-03T00:01:00Z,5,NA,6"), ":3: column input_tokens: 'NA' is not a number"),
    ("nan", body(ROWS[0], "2025-03-03T00:01:00Z,nan,60,6"), ":3: column requests: 'nan' is not a finite"),
    ("inf", body(ROWS[0], "2025-03-03T00:01:00Z,inf,60,6"), ":3: column requests: 'inf' is not a finite"),
    (
        "overflow",
        body(ROWS[0], "2025-03-03T00:01:00Z,1e400,60,6"),
        ":3: column requests: '1e400' is not a fin",
    ),
    ("negative", body(ROWS[0], "2025-03-03T00:01:00Z,6,60,-6"), ":3: column output_tokens: -6 is negative$"),
    ("quoted thousands", body(ROWS[0], '2025-03-03T00:01:00Z,"1,234",60,6'), ":3: column requests: '1,234'"),
    ("empty timestamp", body(ROWS[0], ",6,60,6"), ":3: column timestamp: empty$"),
    (
        "epoch seconds",
        body("1740960000,5,50,5"),
        ":2: column timestamp: '1740960000' is not an ISO-8601 time$",
    ),
    (
        "not on a minute",
        body("2025-03-03T00:00:30Z,5,50,5"),
        ":2: column timestamp: .* not the start of a minute",
    ),
    (
        "a minute twice with other values",
        body(ROWS[0], ROWS[1], "2025-03-03T00:01:00Z,9,90,9"),
        ":4: minute 2025-03-03T00:01:00Z is already on line 3 with other values$",
    ),
    (
        "a minute twice across offsets",
        body("2025-03-03T01:00:00+01:00,5,50,5", "2025-03-03T00:00:00Z,6,60,6"),
        ":3: minute 2025-03-03T00:00:00Z is already on line 2",
    ),
    (
        "five-minute buckets",
        body(*(f"2025-03-03T00:{m:02d}:00Z,5,50,5" for m in (0, 5, 10, 20))),
        ": the rows are 5 minutes apart .* one row per minute",
    ),
    ("a date alone", body("2025-03-03,5,50,5"), ":2: column timestamp: 2025-03-03 is a date without a time"),
    (
        "a date alone, basic format",
        body("20250303,5,50,5"),
        ":2: column timestamp: 20250303 is a date without",
    ),
    ("a week date alone", body("2025-W10-1,5,50,5"), ":2: column timestamp: 2025-W10-1 is a date without"),
    (
        "an offset with seconds: off the minute in UTC",
        body("2025-03-03T00:00:00+00:00:30,5,50,5"),
        ":2: column timestamp: .* is not the start of a minute in UTC",
    ),
    (
        "blank lines, then no header",
        "\n\n" + PLAIN.replace(",", ";"),
        ":3: no timestamp or requests column in the header 'timestamp;requests",
    ),
    ("blank lines only", "\n \n,,,\n", ": empty file \\(3 blank line\\(s\\), no header\\)$"),
    (
        "two dates alone (too few rows to see the spacing)",
        body("2025-03-03,5,50,5", "2025-03-04,5,50,5"),
        ":2: column timestamp: 2025-03-03 is a date without a time of day",
    ),
    (
        "an enormous value",
        body(ROWS[0], "2025-03-03T00:01:00Z,1e300,60,6"),
        ":3: column requests: 1e300 is more than 1e\\+15 in one minute",
    ),
    ("daily rows", body(*(f"2025-03-0{d}T00:00:00Z,5,50,5" for d in (3, 4, 5))), "1440 minutes apart"),
    (
        "a mistyped year",
        body(ROWS[0], ROWS[1], "2205-03-03T00:02:00Z,7,70,7"),
        ": the rows cover 94,669,923 minutes \\(65,743 days and 3 minute\\(s\\)\\), "
        "from 2025-03-03T00:00:00Z \\(line 2\\) to 2205-03-03.* \\(line 4\\)",
    ),
    (
        "an unclosed quote",
        body(ROWS[0], '2025-03-03T00:01:00Z,"6,60,6'),
        ":3: not CSV \\(unexpected end of data\\)$",
    ),
    (
        "out of range in UTC",
        body("0001-01-01T00:00:00+01:00,5,50,5"),
        ":2: column timestamp: .* out of range in UTC$",
    ),
    (
        "the calendar's last day (no time zone east of UTC could show it)",
        body("9999-12-31T10:00:00Z,5,50,5"),
        ":2: column timestamp: 9999-12-31T10:00:00Z is within a day of the calendar's end",
    ),
    (
        "the calendar's first day",
        body("0001-01-01T20:00:00Z,5,50,5"),
        ":2: column timestamp: 0001-01-01T20:00:00Z is within a day of the calendar's end",
    ),
    (
        "Latin-1",
        "timestamp,requests,note\n2025-03-03T00:00:00Z,5,café\n".encode("latin-1"),
        ": not UTF-8 text",
    ),
    ("UTF-16", PLAIN.encode("utf-16"), ": UTF-16 text; save the trace as UTF-8 CSV"),
    ("UTF-16, big-endian", PLAIN.encode("utf-16-be").join([b"\xfe\xff", b""]), ": UTF-16 text"),
    ("bzip2", bz2.compress(PLAIN.encode()), ": bzip2-compressed; decompress it or gzip it"),
    ("xz", lzma.compress(PLAIN.encode()), ": xz-compressed"),
    (
        "text that starts like bzip2's magic is text",
        "BZh,timestamp,requests\n",
        ": no data rows after the header",
    ),
    ("zip", _zipped(PLAIN), ": a zip archive; extract the CSV"),
    ("binary", bytes(range(256)) * 4, ": not UTF-8 text"),
    ("damaged gzip", gzip.compress(PLAIN.encode())[:-12], ": damaged gzip stream"),
]


@pytest.mark.parametrize(("content", "error"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused(tmp_path: Path, content: str | bytes, error: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TraceError) as caught:
        read_trace(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert re.search(error, message[len(str(path)) :]), message


def test_client_rows_repeated_or_conflicting(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    head = "timestamp,client,requests\n2025-03-03T00:00:00Z,a,5\n2025-03-03T00:00:00Z,b,2\n"
    path.write_text(head + "2025-03-03T00:00:00Z,a,5\n")
    trace = read_trace(path)
    assert trace.requests.tolist() == [7.0] and "kept once" in trace.notes[0]
    path.write_text(head + "2025-03-03T00:00:00Z,b,3\n")
    with pytest.raises(
        TraceError, match=":4: minute 2025-03-03T00:00:00Z for client 'b' is already on line 3"
    ):
        read_trace(path)


def trace_of(requests: list[float]) -> Trace:
    return Trace("t.csv", datetime(2025, 3, 3, tzinfo=UTC), np.array(requests, dtype=float))


# requests per minute -> the part replayed, and the notes (regexes, in order)
KNOWN_PART: list[tuple[str, list[float], list[float], list[str]]] = [
    ("no gap", [1, 2, 3], [1, 2, 3], []),
    (
        "gap at the start",
        [NAN, NAN, 1, 2],
        [1, 2],
        ["the first 2 minute\\(s\\) .* from 2025-03-03T00:02:00Z$"],
    ),
    (
        "gap at the end",
        [1, 2, NAN],
        [1, 2],
        ["the last 1 minute\\(s\\) .* replaying to 2025-03-03T00:01:00Z$"],
    ),
    (
        "gaps inside",
        [1, NAN, 2, NAN, NAN, NAN, 3],
        [1, NAN, 2, NAN, NAN, NAN, 3],
        ["^4 minute\\(s\\) in 2 gap\\(s\\) .* \\(longest: 3 from 2025-03-03T00:03:00Z\\): read as missing"],
    ),
    (
        "all three",
        [NAN, 1, NAN, 2, NAN],
        [1, NAN, 2],
        ["the first 1", "the last 1", "^1 minute\\(s\\) in 1 gap"],
    ),
    ("zeros are data", [0, 0, NAN, 0], [0, 0, NAN, 0], ["^1 minute"]),
]


@pytest.mark.parametrize(
    ("requests", "kept", "notes"), [k[1:] for k in KNOWN_PART], ids=[k[0] for k in KNOWN_PART]
)
def test_known_part(requests: list[float], kept: list[float], notes: list[str]) -> None:
    trace, said = known_part(trace_of(requests))
    assert np.array_equal(trace.requests, np.array(kept), equal_nan=True)
    first = next(i for i, r in enumerate(requests) if not math.isnan(r))
    assert trace.start == trace_of(requests).time_at(first)
    assert len(said) == len(notes) and all(re.search(n, s) for n, s in zip(notes, said, strict=True)), said


def test_gaps_and_no_data_at_all() -> None:
    assert gaps(trace_of([NAN, 1, NAN, NAN, 2, NAN])) == [(0, 1), (2, 2), (5, 1)]
    assert gaps(trace_of([1.0])) == []
    with pytest.raises(ValueError, match="none of its 2 minutes has data"):
        known_part(trace_of([NAN, NAN]))


def minutes_csv(requests: list[str]) -> str:
    return body(*(f"2025-03-03T{i // 60:02d}:{i % 60:02d}:00Z,{r},," for i, r in enumerate(requests)))


ROUTE_30 = (
    "upstreams: [{name: a, url: 'http://a.invalid/v1', model: m}]\nproxy: {maxReplicas: 30}\n"
    "rateLimits: {identity: {type: Unauthenticated}}\n"
)

# id, files to write (name -> content), arguments after "simulate", exit code, stderr (regex), JSON checks
CLI: list[tuple[str, dict[str, str], list[str], int, str, dict[str, object]]] = [
    ("all blank", {"t.csv": minutes_csv(["", ""])}, [], 2, r"t\.csv: every requests cell is empty", {}),
    (
        "blank at both ends",
        {"t.csv": minutes_csv(["", "", "600", "", "900", ""])},
        [],
        0,
        r"the first 2 minute\(s\) .*\n.*the last 1 minute\(s\).*\n.*1 minute\(s\) in 1 gap",
        {"minutes": 3, "start": "2025-03-03T00:02:00Z"},
    ),
    (
        "--minutes inside a gap",
        {"t.csv": minutes_csv(["", "", "600"])},
        ["--minutes", "2"],
        2,
        "none of its 2",
        {},
    ),
    (
        "--minutes beyond the trace",
        {"t.csv": minutes_csv(["600", "900"])},
        ["--minutes", "5"],
        0,
        "--minutes 5: the trace has 2, all replayed",
        {"minutes": 2},
    ),
    ("reader's note", {"t.csv": minutes_csv(["600", "900"]).replace("Z,", ",")}, [], 0, "read as UTC", {}),
    ("no such trace", {}, [], 2, r"t\.csv: No such file or directory$", {}),
    ("trace is a directory", {"t.csv/x": ""}, [], 2, r"t\.csv: Is a directory$", {}),
    (
        "route YAML broken",
        {"t.csv": minutes_csv(["600"]), "r.yaml": "spec: [open\n"},
        ["--route", "{dir}/r.yaml"],
        2,
        r"r\.yaml: YAML syntax error at line 2, column 1: ",
        {},
    ),
    (
        "route invalid",
        {"t.csv": minutes_csv(["600"]), "r.yaml": "upstreams: []\n"},
        ["--route", "{dir}/r.yaml"],
        2,
        r"r\.yaml: invalid LLMRoute:\n  upstreams: .*\n  rateLimits: Field required$",
        {},
    ),
    (
        "--out in no directory",
        {"t.csv": minutes_csv(["600"])},
        ["--out", "{dir}/no/o.csv"],
        2,
        "--out .*: no directory",
        {},
    ),
    (
        "--out a directory",
        {"t.csv": minutes_csv(["600"])},
        ["--out", "{dir}"],
        2,
        "--out .*: is a directory$",
        {},
    ),
    (
        "a peak beyond 2**52 replicas",
        {
            "t.csv": minutes_csv(["600"]),
            "r.yaml": ROUTE_30 + "scaling: {metric: {targetPerReplica: 1.0e-300}}\n",
        },
        ["--route", "{dir}/r.yaml"],
        2,
        r"the busiest minute \(2e\+03 req/s\) would need more than 2\*\*52 replicas of 1e-300 req/s",
        {},
    ),
    (
        "a route whose maxReplicas is below the peak",
        {"t.csv": minutes_csv(["600", "900"]), "r.yaml": ROUTE_30},
        ["--route", "{dir}/r.yaml"],
        0,
        "",
        {"notes": "the busiest minute needs 40 replicas, above the route's maxReplicas 30: every policy is"},
    ),
    (
        "--plot in no directory",
        {"t.csv": minutes_csv(["600"])},
        ["--plot", "{dir}/no/p.png"],
        2,
        "--plot .*: no dir",
        {},
    ),
]


@pytest.mark.parametrize(
    ("files", "args", "code", "err", "summary"), [c[1:] for c in CLI], ids=[c[0] for c in CLI]
)
def test_simulate_command_on_input_as_users_have_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    args: list[str],
    code: int,
    err: str,
    summary: dict[str, object],
) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    argv = ["simulate", "--trace", str(tmp_path / "t.csv"), "--peak-replicas", "40", "--json", "--quiet"]
    argv += ["--out", str(tmp_path / "o.csv"), *(a.replace("{dir}", str(tmp_path)) for a in args)]
    assert main(argv) == code
    out, stderr = capsys.readouterr()
    assert re.search(err, stderr), stderr
    assert all(line.startswith("llmroute simulate: ") for line in stderr.splitlines() if line[:2] != "  ")
    if code == 0:
        data = json.loads(out)
        assert {k: data[k] for k in summary if k != "notes"} == {
            k: v for k, v in summary.items() if k != "notes"
        }
        assert str(summary.get("notes", "")) in " ".join(data["notes"])
    else:
        assert out == ""


# a flag's value -> argparse refuses it (exit 2) with these words
FLAGS = [
    (["--capacity-rps", "inf"], "--capacity-rps: must be a finite number, got inf"),
    (["--capacity-rps", "2e9"], "--capacity-rps: at most 1e\\+09"),
    (["--peak-replicas", "nan"], "--peak-replicas: must be a finite number"),
    (["--peak-replicas", "20000"], "--peak-replicas: at most 10000 \\(the most replicas a route may have\\)"),
    (["--peak-rps", "0"], "--peak-rps: must be positive"),
    (["--startup-seconds", "inf"], "--startup-seconds: must be a finite number"),
    (["--startup-seconds", "1e300"], "--startup-seconds: at most 3600"),
    (["--startup-seconds", "-1"], "--startup-seconds: must not be negative"),
]


@pytest.mark.parametrize(("flags", "err"), FLAGS, ids=[f[0][0] + " " + f[0][1] for f in FLAGS])
def test_simulate_flags_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], err: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--out", str(tmp_path / "o.csv"), *flags])
    assert exited.value.code == 2
    assert re.search(err, capsys.readouterr().err)


def test_a_client_row_with_an_empty_cell_leaves_its_minute_unknown(tmp_path: Path) -> None:
    """The other clients' rows are only part of the minute: their sum is not its traffic (it would read the
    missing client as 0). A client without a row at all sent nothing that minute."""
    path = tmp_path / "c.csv"
    path.write_text(
        "timestamp,client,requests,input_tokens\n"
        "2025-03-03T00:00:00Z,a,5,50\n2025-03-03T00:00:00Z,b,,20\n"
        "2025-03-03T00:01:00Z,a,1,\n2025-03-03T00:01:00Z,b,2,20\n"
        "2025-03-03T00:02:00Z,a,4,40\n"
    )
    trace = read_trace(path)
    assert np.array_equal(trace.requests, [NAN, 3, 4], equal_nan=True)
    assert trace.input_tokens is not None
    assert np.array_equal(trace.input_tokens, [70, NAN, 40], equal_nan=True)
    assert np.array_equal(trace.clients["a"], [5, 1, 4], equal_nan=True)
    assert np.array_equal(trace.clients["b"], [NAN, 2, 0], equal_nan=True)


def test_a_client_collection_gap_never_scales_llmroute_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The big client's cells are empty for 50 minutes while the small one's are not: read as the small
    one's traffic alone, the load would drop 100-fold and llmroute would scale down to 1 replica."""
    lines = ["timestamp,client,requests"]
    for i in range(240):
        stamp = f"2025-03-03T{i // 60:02d}:{i % 60:02d}:00Z"
        lines += [f"{stamp},big,{'' if 150 <= i < 200 else 30000}", f"{stamp},small,300"]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.csv"
    argv = ["simulate", "--trace", str(tmp_path / "t.csv"), "--out", str(out), "--quiet", "--no-frontier"]
    assert main([*argv, "--policy", "llmroute", "--json"]) == 0
    capsys.readouterr()
    with out.open() as f:
        desired = [int(r["desired_replicas"]) for r in csv.DictReader(f)]
    assert min(desired[150:200]) >= desired[149] > 1


def test_report_tokens_per_request_leaves_out_minutes_without_token_data(tmp_path: Path) -> None:
    """Token cells empty every other minute (their requests known): those minutes' requests are not
    divided into the other minutes' tokens."""
    path = tmp_path / "t.csv"
    path.write_text(
        body(*(f"2025-03-03T00:{m:02d}:00Z,100," + ("," if m % 2 else "100000,10000") for m in range(60)))
    )
    assert analyse(read_trace(path))["tokens_per_request"] == {"input": 1000.0, "output": 100.0}


def test_report_clients_with_a_minute_without_data(tmp_path: Path) -> None:
    """A minute without data is left out of the clients' totals and active shares, not made NaN of them."""
    path = tmp_path / "c.csv"
    path.write_text(
        "timestamp,client,requests\n"
        "2025-03-03T00:00:00Z,big,99\n2025-03-03T00:00:00Z,small,1\n"
        "2025-03-03T00:01:00Z,big,\n2025-03-03T00:01:00Z,small,\n"
        "2025-03-03T00:02:00Z,big,99\n2025-03-03T00:02:00Z,small,1\n"
    )
    clients = analyse(read_trace(path))["clients"]
    assert clients["heaviest"] == [
        {"client": "big", "share": 0.99, "active_minutes_share": 1.0},
        {"client": "small", "share": 0.01, "active_minutes_share": 1.0},
    ]
    assert clients["top_10_percent_share"] == 0.99 and clients["occasional_share"] == 0.0


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/Adak"])
def test_report_of_a_trace_at_the_calendars_end_is_an_error_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], zone: str
) -> None:
    """Read, a time in the calendar's last (or first) day overflowed in a time zone east (west) of UTC."""
    for stamp in ("9999-12-31T23:00:00Z", "0001-01-01T00:00:00Z"):
        (tmp_path / "t.csv").write_text(body(f"{stamp},5,50,5"))
        assert main(["report", "--trace", str(tmp_path / "t.csv"), "--timezone", zone, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert (
            err.startswith(f"llmroute report: {tmp_path / 't.csv'}:2: column timestamp: ")
            and err.count("\n") == 1
        ), err


def test_a_trace_covers_at_most_366_days_of_minutes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(body("2024-01-01T00:00:00Z,5,50,5", "2024-12-31T23:59:00Z,6,60,6"))  # a leap year
    assert read_trace(path).requests.shape == (366 * 1440,)
    path.write_text(body("2024-01-01T00:00:00Z,5,50,5", "2025-01-01T00:00:00Z,6,60,6"))
    with pytest.raises(TraceError, match=r"the rows cover 527,041 minutes \(366 days and 1 minute\(s\)\)"):
        read_trace(path)
