"""A bare aiohttp pass-through proxy (no policies, no metrics): the floor of the proxy's stack.

``bench.proxy_latency --with-floor`` measures it next to llmroute, which separates what the server and
client libraries cost on the machine from what llmroute's policies add.

    python -m bench.bare_proxy PORT UPSTREAM_BASE_URL
"""

from __future__ import annotations

import asyncio
import gc
import sys

import aiohttp
import uvloop
from aiohttp import web


async def serve(port: int, upstream: str) -> None:
    session = aiohttp.ClientSession()

    async def chat(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {"Content-Type": "application/json"}
        async with session.post(upstream + "/chat/completions", data=body, headers=headers) as resp:
            data = await resp.read()
        return web.Response(body=data, status=resp.status, content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/readyz", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    gc.collect()
    gc.freeze()  # as llmroute does
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), sys.argv[2]))
