"""Build per-minute traces from an alibaba/ServeGen checkout (held-out traces for ``bench.sim_frontier``).

Usage::

    python hack/servegen_traces.py SERVEGEN_CHECKOUT OUT_DIR [--check SHARED_TRACES_DIR]

ServeGen (https://github.com/alibaba/ServeGen, Apache-2.0; Xiang et al., arXiv:2505.09999) publishes, for
every client of a model and every 10-minute window, the request rate (``rate x 600`` is the real count) and
a fitted inter-arrival law (Gamma or Weibull, shape first). The counts per window are real; how a window's
requests spread over its ten minutes is modelled here as in the traces' own README:

n + 1 gaps drawn from the client's law, arrivals at the normalised partial sums (so the gaps tile the window
exactly), counted per minute.

A window in which no client of the model has a row with data (all blank in the source) is a collection
gap and is written with empty cells; a window with data and no requests is written as 0. Token columns are
expected values: requests x the client's mean input/output length in the source's 6-hour histograms
(``text_tokens`` for multimodal; clients without histograms get the request-weighted mean of the others).
Times are UTC taking the service to run on China time (day 0 = 2025-03-02T16:00Z, as the dev traces); the
calendar date is a placeholder. Every draw uses a fixed seed per (model, client), so the output is
reproducible. ``--check`` rebuilds the dev traces' spans and verifies their 10-minute sums equal the shared
files' (the real part of the data).
"""

from __future__ import annotations

import argparse
import ast
import csv
import gzip
import json
import subprocess
import sys
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

WINDOW = 600
PER_DAY = 144
DAY0 = datetime(2025, 3, 2, 16, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Spec:
    """One output trace: the source model folder and the days ``[first, last]`` it covers."""

    name: str
    model: str  # e.g. language/m-large
    first: int
    last: int


HELD_OUT = (
    Spec("servegen_mlarge_days07-13", "language/m-large", 7, 13),
    Spec("servegen_msmall_days07-13", "language/m-small", 7, 13),
    Spec("servegen_mmid_days10-13", "language/m-mid", 10, 13),
    Spec("servegen_mmid_days00-02", "language/m-mid", 0, 2),
    Spec("servegen_deepseekr1_day00", "reason/deepseek-r1", 0, 0),
    Spec("servegen_mmimage_day00", "multimodal/mm-image", 0, 0),
)
DEV = (
    Spec("servegen_mlarge_days00-06", "language/m-large", 0, 6),
    Spec("servegen_mmid_days03-09", "language/m-mid", 3, 9),
)


def _git_show(repo: Path, path: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={repo}", "show", f"HEAD:{path}"], check=True, capture_output=True, text=True
    ).stdout


def _files(repo: Path, model: str) -> list[str]:
    out = subprocess.run(
        ["git", f"--git-dir={repo}", "ls-tree", "--name-only", "HEAD", f"data/{model}/"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return sorted(p for p in out if p.endswith("-trace.csv"))


def _spread(rng: np.random.Generator, n: int, pat: str, shape: float) -> np.ndarray:
    """``n`` requests of one window over its ten minutes (int array of 10 summing to ``n``)."""
    if n <= 0:
        return np.zeros(10, dtype=np.int64)
    if pat not in ("Gamma", "Weibull") or shape <= 0:
        raise ValueError(f"unknown arrival pattern {pat!r} (shape {shape})")
    gaps = rng.gamma(shape, 1.0, n + 1) if pat == "Gamma" else rng.weibull(shape, n + 1)
    sums = np.cumsum(gaps)
    edges = sums[-1] * np.arange(1, 10) / 10.0
    below = np.searchsorted(sums[:-1], edges, side="left")
    return np.diff(np.concatenate(([0], below, [n])))


def _mean_lengths(repo: Path, trace_path: str, multimodal: bool) -> dict[int, tuple[float, float]]:
    """6-hour window start (s) -> (mean input tokens, mean output tokens) of one client, where published."""
    try:
        data = json.loads(_git_show(repo, trace_path.replace("-trace.csv", "-dataset.json")))
    except (subprocess.CalledProcessError, json.JSONDecodeError):
        return {}
    out: dict[int, tuple[float, float]] = {}
    key_in = "text_tokens" if multimodal else "input_tokens"
    for start, hist in data.items():
        means = []
        for key in (key_in, "output_tokens"):
            raw = hist.get(key)
            h = ast.literal_eval(raw) if isinstance(raw, str) else raw
            if not h:
                break
            total = sum(h.values())
            means.append(sum(float(k) * v for k, v in h.items()) / total if total else 0.0)
        if len(means) == 2:
            out[int(start)] = (means[0], means[1])
    return out


def build(repo: Path, spec: Spec) -> list[tuple[datetime, int | None, float | None, float | None]]:
    """Rows ``(minute start, requests, input tokens, output tokens)``; ``None`` = collection gap."""
    windows = (spec.last - spec.first + 1) * PER_DAY
    w0 = spec.first * PER_DAY
    reqs = np.zeros(windows * 10, dtype=np.int64)
    has_data = np.zeros(windows, dtype=bool)
    per_client: list[tuple[np.ndarray, dict[int, tuple[float, float]]]] = []
    for path in _files(repo, spec.model):
        rng = np.random.default_rng(zlib.crc32(f"{spec.model}/{path}".encode()))
        counts = np.zeros(windows * 10, dtype=np.int64)
        rows = list(csv.reader(_git_show(repo, path).splitlines()))
        for row in rows:
            # the draws of every window are made, kept or not, so a span's minutes never depend on the span
            ts, rate, pat, a1 = int(row[0]), float(row[1]), row[3], float(row[4])
            n = round(rate * WINDOW) if pat else 0
            spread = _spread(rng, n, pat, a1)
            w = ts // WINDOW - w0
            if 0 <= w < windows:
                if pat:
                    has_data[w] = True
                counts[w * 10 : w * 10 + 10] = spread
        reqs += counts
        per_client.append((counts, _mean_lengths(repo, path, spec.model.startswith("multimodal"))))
    tok_in = np.zeros(windows * 10)
    tok_out = np.zeros(windows * 10)
    uncovered = np.zeros(windows * 10, dtype=np.int64)
    for counts, lengths in per_client:
        for m in range(windows * 10):
            if not counts[m]:
                continue
            six_h = ((w0 * WINDOW + m * 60) // 21600) * 21600
            if six_h in lengths:
                tok_in[m] += counts[m] * lengths[six_h][0]
                tok_out[m] += counts[m] * lengths[six_h][1]
            else:
                uncovered[m] += counts[m]
    covered = reqs - uncovered
    with np.errstate(divide="ignore", invalid="ignore"):
        tok_in = np.where(covered > 0, tok_in * reqs / np.maximum(covered, 1), 0.0)
        tok_out = np.where(covered > 0, tok_out * reqs / np.maximum(covered, 1), 0.0)
    start = DAY0 + timedelta(days=spec.first)
    out: list[tuple[datetime, int | None, float | None, float | None]] = []
    for m in range(windows * 10):
        t = start + timedelta(minutes=m)
        if not has_data[m // 10]:
            out.append((t, None, None, None))
        else:
            out.append((t, int(reqs[m]), float(tok_in[m]), float(tok_out[m])))
    return out


def write(rows: list[tuple[datetime, int | None, float | None, float | None]], path: Path) -> None:
    with gzip.open(path, "wt", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["timestamp", "requests", "input_tokens", "output_tokens"])
        for t, r, i, o in rows:
            stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
            w.writerow([stamp, "", "", ""] if r is None else [stamp, r, round(i or 0.0), round(o or 0.0)])


def check(repo: Path, shared: Path) -> int:
    """Compare the 10-minute sums (and gaps) of the rebuilt dev spans with the shared files; 0 if equal."""
    bad = 0
    for spec in DEV:
        rows = build(repo, spec)
        with open(shared / f"{spec.name}.csv") as f:
            ref = [row["requests"] for row in csv.DictReader(f)]
        mine = ["" if r is None else str(r) for _, r, _, _ in rows]
        for w in range(len(ref) // 10):
            a, b = ref[w * 10 : w * 10 + 10], mine[w * 10 : w * 10 + 10]
            sa = None if all(x == "" for x in a) else sum(int(x or 0) for x in a)
            sb = None if all(x == "" for x in b) else sum(int(x or 0) for x in b)
            if sa != sb:
                bad += 1
                if bad <= 5:
                    print(f"{spec.name} window {w}: shared {sa}, rebuilt {sb}", file=sys.stderr)
        print(json.dumps({"trace": spec.name, "windows": len(ref) // 10, "mismatched": bad}))
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path, help="ServeGen git directory (bare or .git)")
    parser.add_argument("out", type=Path, help="folder for the .csv.gz traces")
    parser.add_argument(
        "--check", type=Path, help="shared dev traces folder to verify the window sums against"
    )
    args = parser.parse_args(argv)
    if args.check:
        return check(args.repo, args.check)
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in HELD_OUT:
        rows = build(args.repo, spec)
        write(rows, args.out / f"{spec.name}.csv.gz")
        known = [r for _, r, _, _ in rows if r is not None]
        print(
            json.dumps(
                {
                    "trace": spec.name,
                    "minutes": len(rows),
                    "empty": len(rows) - len(known),
                    "requests": sum(known),
                    "max_per_minute": max(known, default=0),
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
