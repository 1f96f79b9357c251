"""Requests per CPU-second of two llmroute source trees, measured in interleaved rounds (A, B, A, B, ...).

On a shared 2-core machine a single throughput run moves by tens of percent from one minute to the next;
comparing two versions run minutes apart mostly measures that drift. This benchmark alternates the two
trees round by round with the same fake upstream, the same config (all policies on, as
``proxy_throughput``) and the same wrk load, and reads each proxy's own CPU time from /proc, so the
figure is work per request rather than what the core had left. It reports both sides' per-round figures,
their medians and the ratio B / A of the medians.

    .venv/bin/python -m bench.proxy_ab --a /tmp/llmroute-main/operator --b operator [--rounds 6]

``--a``/``--b`` are source roots (the directory holding the ``llmroute`` package); the proxy process runs
with it first on ``PYTHONPATH``. The fake upstream and wrk always come from this checkout.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.proxy_common import (
    CLIENT_KEY,
    Procs,
    cores,
    emit,
    free_port,
    llmroute_config,
    pinned,
    start_fake,
    tree_cpu_seconds,
    wait_http,
    wrk,
)


def one_round(root: Path, seconds: int, connections: int) -> dict[str, Any]:
    """Start a proxy from source root ``root``, warm it up, load it for ``seconds``; req/CPU-s and req/s."""
    import sys

    sut, other = cores()
    with tempfile.TemporaryDirectory() as tmp, Procs(Path(tmp)) as procs:
        work = Path(tmp)
        upstream = start_fake(procs, other)
        port = free_port()
        args = [sys.executable, "-m", "llmroute", "proxy", "--config", str(llmroute_config(work, upstream)),
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING"]  # fmt: skip
        env = {"PYTHONPATH": str(root.resolve()), "LLMROUTE_PROXY_METRICS_PORT": str(free_port())}
        proc = procs.start("proxy", pinned(sut, args), env)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/v1/models", proc=proc)  # 503 until the config is loaded, then 401 (no key)
        url, headers = base + "/v1/chat/completions", {"Authorization": f"Bearer {CLIENT_KEY}"}
        wrk(url, other, headers, 1, connections)  # warm-up
        before = tree_cpu_seconds(proc.pid)
        result = wrk(url, other, headers, seconds, connections)
        cpu = tree_cpu_seconds(proc.pid) - before
    ok = result["requests"] - result["non_2xx"]
    return {"rps": result["rps"], "cpu_seconds": round(cpu, 2), "per_cpu_second": round(ok / cpu, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--a", type=Path, required=True, help="source root of version A (the baseline)")
    parser.add_argument("--b", type=Path, required=True, help="source root of version B")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        emit({"benchmark": "proxy_ab", "skipped": "wrk is not installed (apt-get install wrk)"})
        return
    rounds: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    for index in range(args.rounds):
        order = ("a", "b") if index % 2 == 0 else ("b", "a")  # ABBA: neither side always goes first
        for side in order:
            rounds[side].append(one_round(getattr(args, side), args.seconds, args.connections))
    median = {side: statistics.median(r["per_cpu_second"] for r in rs) for side, rs in rounds.items()}
    median_rps = {side: statistics.median(r["rps"] for r in rs) for side, rs in rounds.items()}
    emit({"benchmark": "proxy_ab", "a": str(args.a), "b": str(args.b), "rounds": rounds,
          "median_per_cpu_second": median, "median_rps": median_rps,
          "b_over_a_per_cpu_second": round(median["b"] / median["a"], 3),
          "b_over_a_rps": round(median_rps["b"] / median_rps["a"], 3)})  # fmt: skip


if __name__ == "__main__":
    main()
