"""Rate-limit accuracy with 1, 2 and 4 proxy replicas: admitted global rate against the configured limit.

A tier has a global limit of 3000 requests/min (50/s). Clients offer twice that, open loop, spread over the
replicas either evenly or skewed (80 % of the traffic on replica 0). Scenarios:

* ``local`` + even traffic: each replica enforces the per-replica share the operator renders (limit/N);
* ``redis`` + skewed traffic: replicas share GCRA counters in a real ``redis-server`` (global figure);
* ``local`` + skewed traffic: what the per-replica shares admit when traffic is uneven (reported, expected
  to fall short of the limit).

The admitted rate is counted after a warm-up that absorbs the one-second burst. Target: within ±5 %.
All replicas run for the whole benchmark; each scenario gets its config by hot reload (a fresh tier name, so
fresh counters).

    .venv/bin/python -m bench.proxy_ratelimit [--measure 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
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
    free_port,
    open_loop,
    ops_url,
    start_fake,
    start_llmroute,
)
from llmroute.spec.proxyconfig import ProxyConfig

GLOBAL_RPM = 3000
SKEW = 0.8


def scenario_config(
    upstream: str, keys: Path, tier: str, replicas: int, redis_url: str | None
) -> dict[str, Any]:
    team: dict[str, Any] = {
        "name": tier,
        "apiKeysFile": str(keys),
        "requestsPerMinute": GLOBAL_RPM // replicas,
    }
    limits: dict[str, Any] = {"tiers": [team], "divisor": replicas, "replicas": replicas}
    if redis_url:
        team["globalRequestsPerMinute"] = GLOBAL_RPM
        limits["store"] = {"type": "Redis", "url": redis_url}
    return {"route": {"namespace": "bench", "name": "ratelimit"},
            "upstreams": [{"name": "up", "url": upstream, "model": "m"}], "limits": limits,
            "admission": {"maxConcurrency": 4096}}  # fmt: skip


def ready_hash(url: str) -> str:
    try:
        with urllib.request.urlopen(ops_url(url) + "/readyz", timeout=1) as resp:
            return str(json.loads(resp.read()).get("config", ""))
    except OSError:
        return ""


def publish(paths: list[Path], urls: list[str], body: dict[str, Any]) -> None:
    """Write the config for these replicas and wait until each serves it (hot reload)."""
    text = json.dumps(body)
    expected = ProxyConfig.model_validate(body).content_hash()
    for path in paths:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    deadline = time.monotonic() + 20
    while not all(ready_hash(u) == expected for u in urls):
        if time.monotonic() > deadline:
            raise RuntimeError("replicas did not load the scenario config")
        time.sleep(0.05)


def start_redis(procs: Procs, work: Path) -> str | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    port = free_port()
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(work),
    ]
    procs.start("redis", args)
    deadline = time.monotonic() + 10
    import socket

    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--measure", type=float, default=5.0, help="seconds counted per scenario")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds not counted (absorbs the burst)")
    args = parser.parse_args()
    _, other = cores()
    limit_rps = GLOBAL_RPM / 60
    scenarios = [("local", "even", n) for n in (1, 2, 4)] + [("redis", "skewed", n) for n in (1, 2, 4)]
    scenarios += [("local", "skewed", n) for n in (2, 4)]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, Procs(Path(tmp)) as procs:
        work = Path(tmp)
        keys = work / "keys"
        keys.write_text(CLIENT_KEY + "\n")
        upstream = start_fake(procs, other)
        redis_url = start_redis(procs, work)
        paths = [work / f"replica-{i}.json" for i in range(4)]
        first = scenario_config(upstream, keys, "warm", 4, None)
        for path in paths:
            path.write_text(json.dumps(first))
        urls = [start_llmroute(procs, str(i % 2), path, f"replica{i}") for i, path in enumerate(paths)]
        for index, (mode, traffic, n) in enumerate(scenarios):
            if mode == "redis" and redis_url is None:
                rows.append({"mode": mode, "replicas": n, "skipped": "redis-server is not installed"})
                continue
            body = scenario_config(upstream, keys, f"s{index}", n, redis_url if mode == "redis" else None)
            publish(paths[:n], urls[:n], body)
            weights = [1.0] * n if traffic == "even" or n == 1 else [SKEW] + [(1 - SKEW) / (n - 1)] * (n - 1)
            seconds = args.warmup + args.measure
            results = asyncio.run(
                open_loop([u + "/v1" for u in urls[:n]], 2 * limit_rps, seconds, path="/chat/completions",
                          headers={"Authorization": f"Bearer {CLIENT_KEY}"}, weights=weights)
            )  # fmt: skip
            window = [r for r in results if r[0] >= args.warmup]
            admitted = sum(1 for r in window if r[2] == 200) / args.measure
            other_codes = sorted({r[2] for r in window} - {200, 429})
            whole = sum(1 for r in results if r[2] == 200) / seconds
            rows.append({"mode": mode, "traffic": traffic, "replicas": n, "limit_rps": limit_rps,
                         "offered_rps": 2 * limit_rps, "admitted_rps": round(admitted, 2),
                         "error_pct": round(100 * (admitted - limit_rps) / limit_rps, 2),
                         "admitted_rps_with_initial_burst": round(whole, 2),
                         "unexpected_statuses": other_codes})  # fmt: skip
    checked = [
        r for r in rows if "error_pct" in r and not (r["mode"] == "local" and r["traffic"] == "skewed")
    ]
    emit({"benchmark": "proxy_ratelimit_accuracy", "global_limit_rpm": GLOBAL_RPM, "skew": SKEW,
          "warmup_seconds": args.warmup, "measure_seconds": args.measure, "scenarios": rows,
          "within_5pct": all(abs(r["error_pct"]) <= 5 for r in checked)})  # fmt: skip


if __name__ == "__main__":
    main()
