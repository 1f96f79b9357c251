"""Added latency of the proxy over a direct connection, p50/p99, at a fixed 200 req/s (open loop).

The same client sends the same non-streaming chat request at the same schedule, first straight to the fake
upstream, then through ``llmroute proxy`` with all policies on (API-key tiers, per-tier and per-client
limits, metrics). Direct and proxied runs alternate in rounds so that noise from other work on the machine
hits both alike; the result reports pooled percentiles and the median over rounds of the per-round
difference. Target: p99 ≤ 2 ms, judged on the median over rounds: on a shared VM one stalled round can
move the pooled p99 of both paths by milliseconds (the pooled figures are reported alongside).

The client is vegeta (Go, constant rate, built from the Go module proxy on first use; ``--client python``
uses the aiohttp client of the other benchmarks instead, whose own event-loop delays add noise to both
paths; it is also the fallback, with a note in the result, when vegeta cannot be built). Placement on
two cores: the proxy on one core, the fake upstream on the other. By default the
client shares the proxy's core, so that each path crosses between the cores exactly once each way
(client↔upstream directly, proxy↔upstream when proxied) and the difference is the proxy's own work plus
its extra same-core hop; vegeta takes about 10 % of that core at 200 req/s, CPU the proxy then lacks.
``--client-core upstream`` puts the client next to the upstream instead: then the direct path never
crosses cores and the proxied path crosses twice each way, which on a VM adds the cost of the extra
cross-core wake-ups to the figure.

``--with-floor`` adds a third path through a bare aiohttp pass-through (``bench.bare_proxy``, no policies),
pinned like llmroute: the floor of the stack on this machine, so the report separates the libraries' cost
from what llmroute's policies add.

    .venv/bin/python -m bench.proxy_latency [--rounds 10] [--seconds 10] [--rate 200]
        [--client vegeta|python] [--client-core proxy|upstream] [--with-floor]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.proxy_common import (
    CLIENT_KEY,
    Procs,
    cores,
    emit,
    free_port,
    install_vegeta,
    llmroute_config,
    open_loop,
    percentile,
    pinned,
    start_fake,
    start_llmroute,
    vegeta_attack,
    wait_http,
)  # fmt: skip

Rows = list[tuple[float, int, int, float]]


def summary(results: Rows) -> dict[str, float]:
    ok = [r[3] * 1000 for r in results if r[2] == 200]
    return {"requests": len(results), "ok": len(ok), "p50_ms": round(percentile(ok, 50), 3),
            "p90_ms": round(percentile(ok, 90), 3), "p99_ms": round(percentile(ok, 99), 3)}  # fmt: skip


def added(path: dict[str, float], direct: dict[str, float], keys: tuple[str, ...]) -> dict[str, float]:
    return {k: round(path[k] - direct[k], 3) for k in keys}


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in rounds), 3) for k in ("p50_ms", "p99_ms")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0, help="per round and per path")
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--client", choices=("vegeta", "python"), default="vegeta")
    parser.add_argument("--client-core", choices=("proxy", "upstream"), default="proxy")
    parser.add_argument("--with-floor", action="store_true", help="also measure a bare aiohttp proxy")
    args = parser.parse_args()
    sut, other = cores()
    client_core = sut if args.client_core == "proxy" else other
    vegeta = install_vegeta() if args.client == "vegeta" else None
    client_name = "vegeta" if vegeta is not None else "python"
    note = (
        "vegeta could not be built (needs Go); used the python client" if client_name != args.client else ""
    )
    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    direct_all: Rows = []
    proxied_all: Rows = []
    floor_all: Rows = []
    rounds: list[dict[str, float]] = []
    floor_rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp, Procs(Path(tmp)) as procs:
        workdir = Path(tmp)
        upstream = start_fake(procs, other)
        proxy = start_llmroute(procs, sut, llmroute_config(workdir, upstream))
        bare = ""
        if args.with_floor:
            port = free_port()
            cmd = [sys.executable, "-m", "bench.bare_proxy", str(port), upstream]
            wait_http(f"http://127.0.0.1:{port}/readyz", proc=procs.start("bare", pinned(sut, cmd)))
            bare = f"http://127.0.0.1:{port}"

        def run(base: str, seconds: float, headers: dict[str, str] | None) -> Rows:
            if vegeta is not None:
                url = base + "/chat/completions"
                return vegeta_attack(vegeta, url, args.rate, seconds, client_core, workdir, headers)
            rows = open_loop([base], args.rate, seconds, path="/chat/completions", headers=headers)
            return asyncio.run(rows)

        if vegeta is None:
            os.sched_setaffinity(0, {int(client_core)})
        run(proxy + "/v1", 2.0, auth)  # warm-up
        for _ in range(args.rounds):  # interleaved, so a noisy neighbour hits both paths alike
            direct = run(upstream, args.seconds, None)
            proxied = run(proxy + "/v1", args.seconds, auth)
            direct_all += direct
            proxied_all += proxied
            d, p = summary(direct), summary(proxied)
            rounds.append(added(p, d, ("p50_ms", "p99_ms")))
            if bare:
                floor = run(bare + "/v1", args.seconds, None)
                floor_all += floor
                f = summary(floor)
                floor_rounds.append(added(f, d, ("p50_ms", "p99_ms")))
    direct_s, proxied_s = summary(direct_all), summary(proxied_all)
    pooled = added(proxied_s, direct_s, ("p50_ms", "p90_ms", "p99_ms"))
    median = median_of(rounds)
    extra: dict[str, object] = {}
    if floor_rounds:
        floor_s = summary(floor_all)
        extra = {
            "bare_aiohttp": floor_s,
            "bare_added_pooled": added(floor_s, direct_s, ("p50_ms", "p90_ms", "p99_ms")),
            "bare_added_median_of_rounds": median_of(floor_rounds),
        }
    emit({"benchmark": "proxy_added_latency", "rate_rps": args.rate, "rounds": args.rounds,
          "seconds_per_round": args.seconds, "client": client_name, "client_core": args.client_core,
          "direct": direct_s, "proxied": proxied_s, "added_pooled": pooled, "added_per_round": rounds,
          "added_median_of_rounds": median, "target_p99_ms": 2.0,
          **extra, **({"note": note} if note else {}), "meets_target": median["p99_ms"] <= 2.0})  # fmt: skip


if __name__ == "__main__":
    main()
