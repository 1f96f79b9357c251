"""Helpers for the proxy tests: config builders, polling with a deadline, metric reading, processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from llmroute.spec.proxyconfig import ProxyConfig

if TYPE_CHECKING:
    from tests.proxy.conftest import Harness

ROOT = Path(__file__).resolve().parents[2]


def upstream(url: str, name: str = "a", model: str = "m", **kw: Any) -> dict[str, Any]:
    return {"name": name, "url": url, "model": model, **kw}


def config(*upstreams: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A wire-format ProxyConfig dict (camelCase keys); without tiers the route says it serves anyone."""
    body: dict[str, Any] = {"route": {"namespace": "ns", "name": "r"}, "upstreams": list(upstreams)}
    body.update(kw)
    limits = body.setdefault("limits", {})
    if not limits.get("tiers"):
        limits.setdefault("identity", "Unauthenticated")
    # active probes add connections and upstream requests of their own: only tests about them enable them
    body["passiveHealth"] = {"probeIntervalSeconds": 0, **body.get("passiveHealth", {})}
    ProxyConfig.model_validate(body)  # fail early on a typo in a test
    return body


def tier(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, **kw}


async def eventually(
    check: Callable[[], Awaitable[object]] | Callable[[], object],
    within: float = 10.0,
    interval: float = 0.02,
) -> None:
    """Poll ``check`` until it is true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s: {check}")
        await asyncio.sleep(interval)


async def ready_hash(h: Harness) -> str:
    """The hash of the config the proxy serves, as its ``/readyz`` says ("" while it is not ready)."""
    assert h.server is not None
    async with h.session.get(h.server.metrics_url + "/readyz") as resp:
        body = await resp.json()
        return str(body.get("config", "")) if resp.status == 200 else ""


async def reloaded_from(h: Harness, first: str) -> bool:
    """Whether the proxy is ready on a config other than the one :func:`ready_hash` gave as ``first``."""
    return (await ready_hash(h)) not in ("", first)


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(4))
    return total


class ProxyProcess:
    """``llmroute proxy`` as a child process on a free port (read from its log)."""

    def __init__(
        self, config_path: Path, log_path: Path, reload_interval: float = 0.05, extra: tuple[str, ...] = ()
    ) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self._log = log_path.open("wb")
        args = [sys.executable, "-m", "llmroute", "proxy", "--config", str(config_path)]
        args += ["--host", "127.0.0.1", "--port", "0", "--metrics-port", "0"]
        args += ["--reload-interval", str(reload_interval), *extra]
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.url = ""
        self.metrics_url = ""

    async def ready(self, within: float = 20.0) -> str:
        def listening() -> bool:
            match = re.search(
                r"listening on (http://\S+) \(metrics and health on (http://\S+)\)", self.log_path.read_text()
            )
            if match:
                self.url, self.metrics_url = match.group(1), match.group(2)
            assert self.process.poll() is None, self.log_path.read_text()
            return bool(match)

        await eventually(listening, within)
        return self.url

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        return self.process.returncode


@contextlib.asynccontextmanager
async def serve_chat(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    """A scripted upstream on loopback answering ``POST /v1/chat/completions`` with ``handler``; yields its
    base URL (``http://127.0.0.1:<port>/v1``) and stops it on exit."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()
