"""Added latency of the proxy over a direct connection, p50/p99, at a fixed 200 req/s (open loop).

The same client sends the same non-streaming chat request at the same schedule, first straight to the fake
upstream, then through ``llmroute proxy`` with all policies on (API-key tiers, per-tier and per-client
limits, metrics). The proxy is pinned to one core, upstream and client to the other. Target: p99 ≤ 2 ms.

    .venv/bin/python -m bench.proxy_latency [--seconds 15] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.proxy_common import (
    CLIENT_KEY,
    Procs,
    cores,
    emit,
    llmroute_config,
    open_loop,
    percentile,
    start_fake,
    start_llmroute,
)  # fmt: skip


def summary(results: list[tuple[float, int, int, float]]) -> dict[str, float]:
    ok = [r[3] * 1000 for r in results if r[2] == 200]
    return {"requests": len(results), "ok": len(ok), "p50_ms": round(percentile(ok, 50), 3),
            "p90_ms": round(percentile(ok, 90), 3), "p99_ms": round(percentile(ok, 99), 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    sut, other = cores()
    with tempfile.TemporaryDirectory() as tmp, Procs(Path(tmp)) as procs:
        upstream = start_fake(procs, other)
        proxy = start_llmroute(procs, sut, llmroute_config(Path(tmp), upstream))
        auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
        asyncio.run(
            open_loop([proxy + "/v1"], args.rate, 1.0, path="/chat/completions", headers=auth)
        )  # warm-up
        direct = summary(
            asyncio.run(open_loop([upstream], args.rate, args.seconds, path="/chat/completions"))
        )
        proxied = summary(
            asyncio.run(
                open_loop([proxy + "/v1"], args.rate, args.seconds, path="/chat/completions", headers=auth)
            )
        )
    added = {k: round(proxied[k] - direct[k], 3) for k in ("p50_ms", "p90_ms", "p99_ms")}
    emit({"benchmark": "proxy_added_latency", "rate_rps": args.rate, "seconds": args.seconds,
          "direct": direct, "proxied": proxied, "added": added, "target_p99_ms": 2.0,
          "meets_target": added["p99_ms"] <= 2.0})  # fmt: skip


if __name__ == "__main__":
    main()
