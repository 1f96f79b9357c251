"""Memory of the proxy per 1,000 concurrent streaming connections.

One ``llmroute proxy`` (all policies on) relays 1,000 concurrent slow chat streams from the fake upstream
to 1,000 clients that read as the events arrive. The proxy's resident set size (VmRSS) is sampled idle
(after a warm-up) and while all 1,000 streams are open; the difference is the cost of the streams.

    .venv/bin/python -m bench.proxy_memory [--streams 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.proxy_common import (
    CLIENT_KEY,
    Procs,
    cores,
    emit,
    llmroute_config,
    rss_kib,
    start_fake,
    start_llmroute,
)


def fake_active(upstream: str) -> int:
    with urllib.request.urlopen(upstream.removesuffix("/v1") + "/_fake/stats", timeout=2) as resp:
        return int(json.loads(resp.read())["active"])


async def stream_client(port: int, body: bytes, stop: asyncio.Event) -> int:
    """Open one stream and read it until told to stop; returns bytes read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {CLIENT_KEY}\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    writer.write(head.encode() + body)
    await writer.drain()
    total = 0
    while not stop.is_set():
        try:
            chunk = await asyncio.wait_for(reader.read(65536), 0.5)
        except TimeoutError:
            continue
        if not chunk:
            break
        total += len(chunk)
    writer.close()
    return total


async def run(port: int, upstream: str, pid: int, streams: int) -> dict[str, float]:
    body = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"stream please"}]}'
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(stream_client(port, body, stop)) for _ in range(streams)]
    deadline = time.monotonic() + 40
    while await asyncio.to_thread(fake_active, upstream) < streams:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    open_streams = await asyncio.to_thread(fake_active, upstream)
    samples = []
    for _ in range(5):
        samples.append(rss_kib(pid))
        await asyncio.sleep(0.3)
    stop.set()
    read = await asyncio.gather(*tasks)
    return {"open_streams": open_streams, "rss_kib": max(samples), "client_bytes": sum(read)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    sut, other = cores()
    with tempfile.TemporaryDirectory() as tmp, Procs(Path(tmp)) as procs:
        upstream = start_fake(procs, other, chunks=400, chunk_delay=0.05)  # 20-second streams
        url = start_llmroute(procs, sut, llmroute_config(Path(tmp), upstream))
        pid = next(p.pid for p in procs.items if "llmroute" in str(p.args) and "proxy" in str(p.args))
        port = int(url.rsplit(":", 1)[1])
        asyncio.run(run(port, upstream, pid, 20))  # warm-up: imports, pools, first allocations
        idle = rss_kib(pid)
        loaded = asyncio.run(run(port, upstream, pid, args.streams))
    per_stream = (loaded["rss_kib"] - idle) / max(1, loaded["open_streams"])
    emit({"benchmark": "proxy_memory_streams", "streams_requested": args.streams,
          "streams_open": loaded["open_streams"], "rss_idle_mib": round(idle / 1024, 1),
          "rss_with_streams_mib": round(loaded["rss_kib"] / 1024, 1),
          "per_stream_kib": round(per_stream, 1),
          "mib_per_1000_streams": round(per_stream * 1000 / 1024, 1)})  # fmt: skip


if __name__ == "__main__":
    main()
