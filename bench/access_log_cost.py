"""What the access log costs the proxy: requests per CPU-second with the log on and off.

    .venv/bin/python -m bench.access_log_cost [--rounds 6] [--seconds 8]

One proxy process (pinned to one core, all policies on, its stdout going to a file as a container
runtime's would) serves wrk's non-streaming chat requests from the fake upstream (both on the other
core). The access log is switched on and off in the same process by rewriting its config (hot reload,
checked through ``/readyz``), in ABBA order over the rounds so drift on this noisy 2-core machine falls on
both sides alike. Each run's figure is successful requests over the proxy's own CPU seconds (user +
system from ``/proc``), so time the proxy spent waiting for a core does not count. The target: the
median with the log on is at most 10 % below the median with it off.

A second, in-process figure: the CPU time of one line on the request path (queueing its figures) and in
the writer thread (formatting them), against the proxy's CPU time per request measured with the log off.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.proxy_common import (
    CLIENT_KEY,
    Procs,
    cores,
    emit,
    llmroute_config,
    ops_url,
    start_fake,
    start_llmroute,
    tree_cpu_seconds,
    wrk,
)
from llmroute.proxy.accesslog import AccessLogWriter
from llmroute.spec.proxyconfig import ProxyConfig


def _set_log(config: Path, base: dict[str, Any], on: bool, key_file: Path, proxy: str) -> None:
    body = dict(base)
    if on:
        body["accessLog"] = {"enabled": True, "sampleRate": 1.0, "hashKeyFile": str(key_file)}
    tmp = config.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(config)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the proxy reports the hash of the config it serves
        with urllib.request.urlopen(f"{ops_url(proxy)}/readyz", timeout=2) as resp:
            served = json.loads(resp.read()).get("config")
        if served == ProxyConfig.model_validate(body).content_hash():
            return
        time.sleep(0.05)
    raise RuntimeError("the proxy did not load the new config")


RID = "5f0c1a2b3c4d00000001"
ENTRY = (0.0, RID, "bench/bench", "team", b"\x01" * 32, "/v1/chat/completions", "m", False, 200, None,
         12, 16, 90, 0.001234, 0.001234, "miss", "up", 0)  # fmt: skip


def in_process_us(lines: int = 200_000, batch: int = 200) -> tuple[float, float]:
    """CPU microseconds per line on the request path (queueing the figures) and in the writer thread
    (formatting and writing them to /dev/null, ``batch`` lines a wake as at about 4,000 requests/s; run
    here in this thread)."""
    queue = fmt = 0.0
    with Path("/dev/null").open("wb") as null:
        writer = AccessLogWriter(null.fileno(), max_pending_lines=lines + 1)
        writer.enabled, writer._hash_key = True, b"bench-key"  # no thread: both halves timed here
        for _ in range(lines // batch):
            started = time.process_time()
            for _ in range(batch):
                writer.write((time.time(), *ENTRY[1:]))
            queued = time.process_time()
            writer._drain()
            queue, fmt = queue + queued - started, fmt + time.process_time() - queued
    return queue / lines * 1e6, fmt / lines * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6, help="rounds of one run with the log off and one on")
    parser.add_argument("--seconds", type=int, default=8, help="seconds of load per run")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    proxy_core, other_core = cores()
    runs: dict[str, list[float]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="llmroute-logcost-") as tmp, Procs(Path(tmp)) as procs:
        work = Path(tmp)
        upstream = start_fake(procs, other_core)
        config = llmroute_config(work, upstream)
        base = json.loads(config.read_text())
        key_file = work / "hash-key"
        key_file.write_text("bench-hash-key\n")
        proxy = start_llmroute(procs, proxy_core, config)
        pid = procs.items[-1].pid
        headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
        wrk(f"{proxy}/v1/chat/completions", other_core, headers, 3, args.connections)  # warm-up
        for r in range(args.rounds):
            order = ("off", "on") if r % 2 == 0 else ("on", "off")
            for mode in order:
                _set_log(config, base, mode == "on", key_file, proxy)
                cpu0 = tree_cpu_seconds(pid)
                result = wrk(
                    f"{proxy}/v1/chat/completions", other_core, headers, args.seconds, args.connections
                )
                cpu = tree_cpu_seconds(pid) - cpu0
                ok = result["requests"] - result["non_2xx"]
                runs[mode].append(round(ok / cpu, 1) if cpu > 0 else 0.0)
        log_lines = sum(1 for _ in (work / f"llmroute-{proxy.rsplit(':', 1)[1]}.log").open("rb"))
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    queue_us, format_us = in_process_us()
    per_line = queue_us + format_us
    emit(
        {
            "requests_per_cpu_second": {
                "off": runs["off"],
                "on": runs["on"],
                "median_off": off,
                "median_on": on,
            },
            "cost_percent": round(100 * (1 - on / off), 2) if off else None,
            "target_percent": 10,
            "meets_target": bool(off and (1 - on / off) <= 0.10),
            "in_process": {
                "us_per_line": round(per_line, 2),
                "us_on_the_request_path": round(queue_us, 2),
                "us_in_the_writer_thread": round(format_us, 2),
                "proxy_us_per_request_log_off": round(1e6 / off, 1) if off else None,
                "share_percent": round(100 * per_line * off / 1e6, 2) if off else None,
            },
            "log_lines_written": log_lines,
        }
    )


if __name__ == "__main__":
    main()
