"""``llmroute proxy`` as a process: starts from a config file, serves, drains in-flight work on SIGTERM."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.support import ProxyProcess, config, eventually, upstream


async def test_cli_serves_and_stops_gracefully(tmp_path: Path, fake: FakeUpstream) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config(upstream(fake.url))))
    process = ProxyProcess(path, tmp_path / "proxy.log")
    try:
        url = await process.ready()
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
            fake.default = FakeBehavior(latency=1.0)

            async def slow() -> int:
                async with session.post(url + "/v1/chat/completions", json=body) as resp:
                    await resp.read()
                    return resp.status

            inflight = asyncio.ensure_future(slow())
            await eventually(lambda: fake.stats.active == 1)
            process.process.terminate()
            assert await inflight == 200  # drained, not dropped
        await eventually(lambda: process.process.poll() is not None)
        assert process.process.returncode == 0
    finally:
        process.stop()
