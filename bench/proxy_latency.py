"""Added latency of the proxy over a direct connection, p50/p99, at a fixed 200 req/s (open loop).

The same client sends the same non-streaming chat request at the same schedule, first straight to the fake
upstream, then through ``llmroute proxy`` with all policies on (API-key tiers, per-tier and per-client
limits, metrics). The proxy is pinned to one core, upstream and client to the other. Direct and proxied
runs alternate in short rounds so that noise from other work on the machine hits both alike; the result
reports pooled percentiles and the median over rounds of the per-round difference. Target: p99 ≤ 2 ms.

    .venv/bin/python -m bench.proxy_latency [--rounds 8] [--seconds 5] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
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
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="per round and per path")
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    sut, other = cores()
    # the client shares the upstream's core, never the proxy's: otherwise it would steal the proxy's CPU
    # in the proxied rounds only
    os.sched_setaffinity(0, {int(other)})
    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    direct_all: list[tuple[float, int, int, float]] = []
    proxied_all: list[tuple[float, int, int, float]] = []
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp, Procs(Path(tmp)) as procs:
        upstream = start_fake(procs, other)
        proxy = start_llmroute(procs, sut, llmroute_config(Path(tmp), upstream))
        asyncio.run(
            open_loop([proxy + "/v1"], args.rate, 1.0, path="/chat/completions", headers=auth)
        )  # warm-up
        for _ in range(args.rounds):  # interleaved, so a noisy neighbour hits both paths alike
            direct = asyncio.run(open_loop([upstream], args.rate, args.seconds, path="/chat/completions"))
            proxied = asyncio.run(
                open_loop([proxy + "/v1"], args.rate, args.seconds, path="/chat/completions", headers=auth)
            )
            direct_all += direct
            proxied_all += proxied
            d, p = summary(direct), summary(proxied)
            rounds.append({k: round(p[k] - d[k], 3) for k in ("p50_ms", "p99_ms")})
    direct_s, proxied_s = summary(direct_all), summary(proxied_all)
    added = {k: round(proxied_s[k] - direct_s[k], 3) for k in ("p50_ms", "p90_ms", "p99_ms")}
    median = {k: round(statistics.median(r[k] for r in rounds), 3) for k in ("p50_ms", "p99_ms")}
    emit({"benchmark": "proxy_added_latency", "rate_rps": args.rate, "rounds": args.rounds,
          "seconds_per_round": args.seconds, "direct": direct_s, "proxied": proxied_s, "added_pooled": added,
          "added_per_round": rounds, "added_median_of_rounds": median, "target_p99_ms": 2.0,
          "meets_target": median["p99_ms"] <= 2.0})  # fmt: skip


if __name__ == "__main__":
    main()
