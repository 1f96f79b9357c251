"""Load balancing under real load: which strategy keeps time to first token down, and which keeps hosted
APIs under quota. Prints one JSON document.

    flock /tmp/llmroute-heavy.lock .venv/bin/python -m bench.proxy_balancing [--seconds 60] [--only engines]

**Engines.** Three fake engines (``llmroute.testing.fake_upstream`` in engine mode) of 8, 16 and 32 slots,
each request 0.1 s to its first token and 10 chunks 0.08 s apart (0.9 s in a slot), so the pool serves
about 62 req/s. One proxy in front, each strategy in turn, the same seeded open-loop arrivals for each: a
two-second burst at 1.4x capacity every six seconds and 0.575x in between (0.85x on average), streaming
chat. Per strategy: time to first token and latency (p50/p95/p99, ms) as the client sees them, throughput
(completed requests per second from the first send to the last answer), errors, and requests per engine.
Target: ResourceAware's p99 time to first token at least 30 % below LeastConnections' and LatencyAware's,
with no loss of throughput.

**Hosted.** Two fake hosted APIs with quotas of 1:3 (60 and 180 requests per 10 s, tokens to match,
OpenAI's ``x-ratelimit-*`` headers, 429 with ``Retry-After`` past them), Poisson load at 90 % of the
summed quota. Per strategy: the 429s the upstreams answered (the proxy retries them on the other upstream,
so clients mostly see 200), what the clients saw, and the split. Target: ResourceAware zero upstream 429s
where RoundRobin has some.

The proxy runs on one core, the fakes and the client on the other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from bench.proxy_common import Procs, cores, free_port, pinned, start_llmroute, wait_http

SLOTS = (8, 16, 32)
PREFILL = 0.1
CHUNKS = 10
CHUNK_DELAY = 0.08
SERVICE = PREFILL + CHUNKS * CHUNK_DELAY
BURST = (2.0, 1.4)  # seconds, multiple of capacity
CALM = (4.0, 0.575)
ENGINE_STRATEGIES = ("RoundRobin", "LeastConnections", "LatencyAware", "ResourceAware")
HOSTED_STRATEGIES = ("RoundRobin", "LeastConnections", "ResourceAware")
QUOTAS = (60, 180)  # requests per window
QUOTA_WINDOW = 10.0
HOSTED_LATENCY = 0.3
BODY = {
    "model": "m",
    "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
    "max_tokens": 16,
}


def start_fake(procs: Procs, core: str, name: str, **options: Any) -> str:
    port = free_port()
    args = [sys.executable, "-m", "llmroute.testing.fake_upstream", "--port", str(port), "--name", name]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    proc = procs.start(f"{name}-{port}", pinned(core, args))
    wait_http(f"http://127.0.0.1:{port}/v1/models", proc=proc)
    return f"http://127.0.0.1:{port}"


def fake_stats(base: str) -> dict[str, int]:
    with urllib.request.urlopen(base + "/_fake/stats", timeout=5) as resp:
        stats: dict[str, int] = json.loads(resp.read())
        return stats


def write_config(path: Path, strategy: str, upstreams: list[dict[str, Any]]) -> None:
    body = {
        "route": {"namespace": "bench", "name": "balancing"},
        "upstreams": upstreams,
        "loadBalancing": strategy,
        "admission": {"maxConcurrency": 4096, "queueTimeoutSeconds": 30},
        "passiveHealth": {"probeIntervalSeconds": 0},
        "cache": {"enabled": False},
        "limits": {"identity": "Unauthenticated"},
    }
    path.write_text(json.dumps(body))


def bursty_arrivals(rate: float, seconds: float, seed: int) -> list[float]:
    """Poisson arrivals whose rate alternates between bursts and calm phases (``rate`` is the capacity)."""
    rng = random.Random(seed)
    out: list[float] = []
    t = 0.0
    while t < seconds:
        for length, factor in (BURST, CALM):
            end = min(seconds, t + length)
            at = t + rng.expovariate(rate * factor)
            while at < end:
                out.append(at)
                at += rng.expovariate(rate * factor)
            t = end
    return out


def poisson_arrivals(rate: float, seconds: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    out, at = [], rng.expovariate(rate)
    while at < seconds:
        out.append(at)
        at += rng.expovariate(rate)
    return out


async def drive(url: str, arrivals: list[float], stream: bool) -> list[tuple[int, float, float, float]]:
    """Send one chat request at each arrival offset (open loop). Returns (status, sent at, time to first
    token, latency) per request, seconds; the first token is the first ``data:`` line of a stream (or the
    whole answer when not streaming)."""
    body = json.dumps({**BODY, "stream": stream}).encode()
    headers = {"Content-Type": "application/json"}
    results: list[tuple[int, float, float, float]] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=120)
    ) as session:

        async def one() -> None:
            began = time.perf_counter()
            first = None
            try:
                async with session.post(url + "/v1/chat/completions", data=body, headers=headers) as resp:
                    async for line in resp.content:
                        if first is None and line.startswith(b"data:"):
                            first = time.perf_counter()
                    status = resp.status
            except aiohttp.ClientError:
                status = 0
            end = time.perf_counter()
            results.append((status, began, (first or end) - began, end - began))

        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        for offset in arrivals:
            delay = start + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)
    return results


def percentiles(values: list[float]) -> dict[str, float | None]:
    if len(values) < 2:
        return {"p50": None, "p95": None, "p99": None}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(q[49] * 1000, 1), "p95": round(q[94] * 1000, 1), "p99": round(q[98] * 1000, 1)}


def summary(results: list[tuple[int, float, float, float]]) -> dict[str, Any]:
    ok = [r for r in results if r[0] == 200]
    first_sent = min(r[1] for r in results)
    last_done = max(r[1] + r[3] for r in results)
    return {
        "requests": len(results),
        "ok": len(ok),
        "errors": len(results) - len(ok),
        "throughput_rps": round(len(ok) / (last_done - first_sent), 2),
        "ttft_ms": percentiles([r[2] for r in ok]),
        "latency_ms": percentiles([r[3] for r in ok]),
    }


def wait_idle(bases: list[str], within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while any(fake_stats(b)["active"] for b in bases):
        if time.monotonic() > deadline:
            raise RuntimeError("the fakes did not drain")
        time.sleep(0.2)


def engines(seconds: float, seed: int, only: list[str] | None) -> dict[str, Any]:
    proxy_core, other_core = cores()
    capacity = sum(SLOTS) / SERVICE
    arrivals = bursty_arrivals(capacity, seconds, seed)
    out: dict[str, Any] = {
        "slots": list(SLOTS),
        "service_seconds": SERVICE,
        "capacity_rps": round(capacity, 1),
        "offered_rps": round(len(arrivals) / seconds, 1),
        "seconds": seconds,
        "strategies": {},
    }
    with tempfile.TemporaryDirectory() as tmp, Procs(Path(tmp)) as procs:
        options = {"latency": PREFILL, "chunks": CHUNKS, "chunk_delay": CHUNK_DELAY}
        bases = [start_fake(procs, other_core, f"e{n}", slots=n, **options) for n in SLOTS]
        ups = [
            {"name": f"e{n}", "url": b + "/v1", "model": "m", "engine": "vLLM", "metricsUrl": b + "/metrics"}
            for n, b in zip(SLOTS, bases, strict=True)
        ]
        for strategy in only or ENGINE_STRATEGIES:
            config = Path(tmp) / f"{strategy}.json"
            write_config(config, strategy, ups)
            proxy = start_llmroute(procs, proxy_core, config, name=strategy)
            time.sleep(2.0)  # a few scrapes in: every strategy starts from the same warm state
            before = [fake_stats(b)["received"] for b in bases]
            results = asyncio.run(drive(proxy, arrivals, stream=True))
            wait_idle(bases)
            served = [fake_stats(b)["received"] - n for b, n in zip(bases, before, strict=True)]
            out["strategies"][strategy] = {
                **summary(results),
                "per_engine": {f"e{n}": s for n, s in zip(SLOTS, served, strict=True)},
            }
            procs.stop(procs.items[-1])
    ra = out["strategies"].get("ResourceAware")
    if ra:
        cuts = {}
        for other in ("LeastConnections", "LatencyAware"):
            base = out["strategies"].get(other)
            if base and base["ttft_ms"]["p99"] and ra["ttft_ms"]["p99"] is not None:
                cuts[other] = {
                    "p99_ttft_cut": round(1 - ra["ttft_ms"]["p99"] / base["ttft_ms"]["p99"], 3),
                    "throughput_ratio": round(ra["throughput_rps"] / base["throughput_rps"], 3),
                }
        out["resource_aware_vs"] = cuts
        out["target_met"] = bool(cuts) and all(
            c["p99_ttft_cut"] >= 0.30 and c["throughput_ratio"] >= 0.99 for c in cuts.values()
        )
    return out


def hosted(seconds: float, seed: int, only: list[str] | None) -> dict[str, Any]:
    proxy_core, other_core = cores()
    total = sum(QUOTAS) / QUOTA_WINDOW
    arrivals = poisson_arrivals(0.9 * total, seconds, seed)
    out: dict[str, Any] = {
        "quota_requests_per_window": list(QUOTAS),
        "window_seconds": QUOTA_WINDOW,
        "summed_quota_rps": total,
        "offered_rps": round(len(arrivals) / seconds, 2),
        "seconds": seconds,
        "strategies": {},
    }
    tokens_per_request = 64  # the fake charges ~12 prompt tokens + max_tokens 16; tokens never bind first
    with tempfile.TemporaryDirectory() as tmp, Procs(Path(tmp)) as procs:
        for strategy in only or HOSTED_STRATEGIES:
            bases = [
                start_fake(
                    procs,
                    other_core,
                    f"q{q}",
                    latency=HOSTED_LATENCY,
                    quota_requests=q,
                    quota_tokens=q * tokens_per_request,
                    quota_window=QUOTA_WINDOW,
                )
                for q in QUOTAS
            ]
            ups = [
                {"name": f"q{q}", "url": b + "/v1", "model": "m"} for q, b in zip(QUOTAS, bases, strict=True)
            ]
            config = Path(tmp) / f"hosted-{strategy}.json"
            write_config(config, strategy, ups)
            proxy = start_llmroute(procs, proxy_core, config, name=f"hosted-{strategy}")
            results = asyncio.run(drive(proxy, arrivals, stream=False))
            stats = [fake_stats(b) for b in bases]
            statuses: dict[str, int] = {}
            for r in results:
                statuses[str(r[0])] = statuses.get(str(r[0]), 0) + 1
            out["strategies"][strategy] = {
                "upstream_429s": {f"q{q}": s["ratelimited"] for q, s in zip(QUOTAS, stats, strict=True)},
                "served": {f"q{q}": s["served"] for q, s in zip(QUOTAS, stats, strict=True)},
                "client_statuses": statuses,
                "latency_ms": percentiles([r[3] for r in results if r[0] == 200]),
            }
            for _ in range(3):
                procs.stop(procs.items.pop())
    by = out["strategies"]
    if "ResourceAware" in by and "RoundRobin" in by:
        out["target_met"] = (
            sum(by["ResourceAware"]["upstream_429s"].values()) == 0
            and sum(by["RoundRobin"]["upstream_429s"].values()) > 0
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="load per strategy")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--only", choices=["engines", "hosted"])
    parser.add_argument("--strategy", action="append", help="only these strategies")
    args = parser.parse_args()
    result: dict[str, Any] = {}
    if args.only in (None, "engines"):
        result["engines"] = engines(args.seconds, args.seed, args.strategy)
    if args.only in (None, "hosted"):
        result["hosted"] = hosted(args.seconds, args.seed, args.strategy)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
