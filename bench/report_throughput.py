"""Throughput and memory of ``llmroute report --access-log`` on a generated day of access logs.

    .venv/bin/python -m bench.report_throughput [--lines N] [--gzip] [--out FILE] [--keep]

A day at 200 req/s is 17.28 million lines. The log is generated in time order over one day (2025-03-03,
a Monday, UTC) with a working-day shape (busiest 09:00-17:00), 2,000 clients with Zipf-like weights in
three tiers, three models, three endpoints, half of the chats streamed, and log-normal token counts.
The report then runs as its own process; the result is its wall time, lines per second and peak RSS
(its ``VmHWM``, read while it runs).
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

DAY_START = 1740960000  # 2025-03-03T00:00:00Z
SHAPE = [0.3, 0.25, 0.2, 0.2, 0.25, 0.35, 0.5, 0.8, 1.2, 1.6, 1.8, 1.8,
         1.6, 1.7, 1.8, 1.7, 1.5, 1.2, 0.9, 0.7, 0.6, 0.5, 0.45, 0.35]  # fmt: skip
TIERS = ("premium", "standard", "batch")
MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")
ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")


def generate(out: IO[bytes], lines: int, clients: int = 2000, seed: int = 7) -> int:
    """Write ``lines`` access-log lines of one day to ``out``; returns the bytes written."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, clients + 1) ** 1.1
    weights /= weights.sum()
    ids = [f"{i * 2654435761 % 2**64:016x}" for i in range(clients)]
    per_minute = np.repeat(np.array(SHAPE), 60)
    counts = np.floor(per_minute / per_minute.sum() * lines).astype(int)
    counts[: lines - counts.sum()] += 1
    written = 0
    dumps = orjson.dumps
    for minute, n in enumerate(counts):
        who = rng.choice(clients, size=n, p=weights)
        kind = rng.integers(0, 10, size=n)
        tin = rng.lognormal(6.5, 1.2, size=n).astype(int) + 1
        tout = rng.lognormal(5.0, 1.0, size=n).astype(int) + 1
        status = np.where(rng.random(n) < 0.01, 429, np.where(rng.random(n) < 0.003, 502, 200))
        lat = rng.lognormal(6.0, 0.8, size=n)
        base = DAY_START + minute * 60
        buf = []
        for j in range(n):
            c = int(who[j])
            endpoint = 2 if kind[j] == 9 else (1 if kind[j] == 8 else 0)
            ok = bool(status[j] == 200)
            t = base + 60.0 * j / n
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + f".{int(t % 1 * 1000):03d}Z"
            record: dict[str, Any] = {
                "time": stamp,
                "request_id": f"{minute:04x}{j:06x}",
                "route": "prod/chat",
                "tier": TIERS[c % 3],
                "client": ids[c],
                "endpoint": ENDPOINTS[endpoint],
                "model": MODELS[2 if endpoint == 2 else c % 2],
                "stream": bool(endpoint == 0 and kind[j] < 4),
                "status": int(status[j]),
                "error_type": None
                if ok
                else ("rate_limit_exceeded" if status[j] == 429 else "upstream_error"),
                "input_tokens": int(tin[j]) if ok else None,
                "output_tokens": (0 if endpoint == 2 else int(tout[j])) if ok else None,
                "request_bytes": int(tin[j]) * 4,
                "latency_ms": round(float(lat[j]), 3),
                "ttfb_ms": round(float(lat[j]) / 4, 3),
                "cache": "bypass" if kind[j] < 6 else ("hit" if kind[j] == 6 else "miss"),
                "upstream": "primary",
                "retries": 0,
                "v": 1,
                "sample_rate": 1.0,
            }
            buf.append(dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        chunk = b"".join(buf)
        out.write(chunk)
        written += len(chunk)
    return written


def _hwm_kib(pid: int) -> int:
    """The peak resident set of ``pid`` so far (``VmHWM``), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--lines", type=int, default=17_280_000, help="lines to generate (a day at 200 req/s)"
    )
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--gzip", action="store_true", help="compress the generated log (gzip level 1)")
    parser.add_argument("--out", type=Path, help="where to write the log (default: a temp file)")
    parser.add_argument("--keep", action="store_true", help="keep the generated log")
    parser.add_argument("--reuse", action="store_true", help="reuse --out if it exists")
    args = parser.parse_args()
    path = args.out or Path(tempfile.mkdtemp(prefix="llmroute-bench-")) / (
        "access.log.gz" if args.gzip else "access.log"
    )
    generated = None
    if not (args.reuse and path.exists()):
        started = time.monotonic()
        with path.open("wb") as raw:
            out: Any = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) if args.gzip else raw
            size = generate(out, args.lines, args.clients)
            if args.gzip:
                out.close()
        generated = {"seconds": round(time.monotonic() - started, 1), "uncompressed_bytes": size}
    cmd = [sys.executable, "-m", "llmroute", "report", "--access-log", str(path), "--json", "--quiet"]
    out_file = path.with_suffix(".report.json")
    started = time.monotonic()
    with out_file.open("w") as out_handle:
        proc = subprocess.Popen(cmd, stdout=out_handle, stderr=subprocess.PIPE)
        peak_kib = 0
        while proc.poll() is None:  # VmHWM: the report's own high-water mark (ru_maxrss would include the
            peak_kib = max(peak_kib, _hwm_kib(proc.pid))  # parent's memory, which a vfork'ed child shares)
            time.sleep(0.1)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    wall = time.monotonic() - started
    if proc.returncode != 0:
        print(stderr, file=sys.stderr)
        return 1
    report = json.loads(out_file.read_text())
    out_file.unlink()
    lines = report["input"]["lines"]
    result = {
        "lines": lines,
        "file_bytes": path.stat().st_size,
        "gzip": args.gzip,
        "wall_seconds": round(wall, 2),
        "lines_per_second": round(lines / wall),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "clients_seen": report["clients"]["clients"],
        "generated": generated,
    }
    if not args.keep:
        path.unlink()
        if args.out is None:
            path.parent.rmdir()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
