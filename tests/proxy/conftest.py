"""Fixtures of the proxy tests: fake upstreams and proxies as real servers on loopback, Redis."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from llmroute.proxy.server import ProxyServer
from llmroute.testing.fake_upstream import FakeUpstream


class Harness:
    """Writes the config file and runs one in-process proxy on a free port."""

    def __init__(self, tmp: Path, session: aiohttp.ClientSession) -> None:
        self.dir = tmp
        self.path = tmp / "config.json"
        self.session = session
        self.server: ProxyServer | None = None
        self.access_log_fd = 1  # where the proxy writes its access log (stdout, as in a pod)

    def write(self, cfg: dict[str, Any] | str) -> None:
        text = cfg if isinstance(cfg, str) else json.dumps(cfg)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.path)

    async def start(self, cfg: dict[str, Any] | str | None = None) -> ProxyServer:
        if cfg is not None:
            self.write(cfg)
        self.server = ProxyServer(
            str(self.path),
            "127.0.0.1",
            0,
            reload_interval=0.02,
            shutdown_timeout=5,
            access_log_fd=self.access_log_fd,
        )
        await self.server.start()
        return self.server

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        async with self.session.post(self.url + path, json=body, headers=headers or {}) as resp:
            raw = await resp.read()
            try:
                data: Any = json.loads(raw)
            except ValueError:
                data = raw.decode()
            return resp.status, dict(resp.headers), data

    async def chat(
        self, headers: dict[str, str] | None = None, **body: Any
    ) -> tuple[int, dict[str, str], Any]:
        payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body}
        return await self.post("/v1/chat/completions", payload, headers)

    async def metrics(self) -> str:
        assert self.server is not None
        async with self.session.get(self.server.metrics_url + "/metrics") as resp:
            return await resp.text()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        yield s


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    up = FakeUpstream("a")
    await up.start()
    try:
        yield up
    finally:
        await up.stop()


@pytest.fixture
async def fake_b() -> AsyncIterator[FakeUpstream]:
    up = FakeUpstream("b")
    await up.start()
    try:
        yield up
    finally:
        await up.stop()


@pytest.fixture
async def harness(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[Harness]:
    h = Harness(tmp_path, session)
    try:
        yield h
    finally:
        await h.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A throwaway ``redis-server`` on a free loopback port, data in a temp dir."""

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.workdir = workdir
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (make system-deps)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir)]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
