"""Shared pieces of the proxy benchmarks: processes pinned to cores, configs, wrk, an open-loop client.

Everything runs on loopback. Child processes are started in their own process group and always stopped
(``Procs`` is a context manager). Competitors are installed on first use under ``~/.cache/llmroute/bench``
(never into the project's virtualenv); when that fails the caller reports a skip note instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

CACHE = Path(os.environ.get("LLMROUTE_BENCH_CACHE", Path.home() / ".cache" / "llmroute" / "bench"))
CHAT = b'{"model":"m","messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16}'
CLIENT_KEY = "sk-bench-client"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cores() -> tuple[str, str]:
    """(core for the system under test, core for the upstream and the load generator)."""
    n = os.cpu_count() or 1
    return ("0", "1") if n >= 2 else ("0", "0")


def pinned(core: str, args: list[str]) -> list[str]:
    return ["taskset", "-c", core, *args] if shutil.which("taskset") else args


def wait_http(url: str, within: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:  # a 4xx answer: the server is up
            exc.close()
            if exc.code < 500:
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {within}s")
        time.sleep(0.1)


class Procs:
    """Child processes that are stopped (whole process group) when the block ends."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.items: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        self.items.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for proc in reversed(self.items):
            self.stop(proc)


def start_fake(procs: Procs, core: str, **behavior: Any) -> str:
    port = free_port()
    args = [sys.executable, "-m", "llmroute.testing.fake_upstream", "--port", str(port)]
    for key, value in behavior.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    proc = procs.start(f"fake-{port}", pinned(core, args))
    wait_http(f"http://127.0.0.1:{port}/v1/models", proc=proc)
    return f"http://127.0.0.1:{port}/v1"


def llmroute_config(
    workdir: Path,
    upstream_url: str,
    name: str = "bench",
    tiers: list[dict[str, Any]] | None = None,
    **kw: Any,
) -> Path:
    """A config with all policies on: API-key tiers, per-tier and per-client limits, cache, metrics."""
    keys = workdir / "keys"
    keys.write_text(f"{CLIENT_KEY}\n")
    if tiers is None:
        big = 10**9
        limits = ("requestsPerMinute", "tokensPerMinute", "clientRequestsPerMinute", "clientTokensPerMinute")
        tiers = [{"name": "team", "priority": 5, "apiKeysFile": str(keys), **dict.fromkeys(limits, big)}]
    body: dict[str, Any] = {
        "route": {"namespace": "bench", "name": name},
        "upstreams": [{"name": "up", "url": upstream_url, "model": "m"}],
        "limits": {"tiers": tiers},
        "admission": {"maxConcurrency": 4096, "queueTimeoutSeconds": 5},
        **kw,
    }
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(body))
    return path


def start_llmroute(procs: Procs, core: str, config: Path, name: str = "llmroute") -> str:
    port = free_port()
    args = [sys.executable, "-m", "llmroute", "proxy", "--config", str(config), "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "WARNING", "--reload-interval", "0.1"]  # fmt: skip
    proc = procs.start(f"{name}-{port}", pinned(core, args))
    wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc)
    return f"http://127.0.0.1:{port}"


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its descendants (e.g. nginx's worker)."""
    stats: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    wanted, total, changed = {pid}, 0.0, True
    while changed:
        changed = False
        for child, (parent, _) in stats.items():
            if parent in wanted and child not in wanted:
                wanted.add(child)
                changed = True
    for member in wanted:
        total += stats.get(member, (0, 0.0))[1]
    return total


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wrk(url: str, core: str, headers: dict[str, str], seconds: int, connections: int = 32) -> dict[str, Any]:
    """Run wrk (POSTing the chat body) and return req/s (successful only), latency percentiles, errors."""
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"llmroute-wrk-{os.getpid()}.lua"
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = [[{CHAT.decode()}]]",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    args = pinned(
        core, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    )
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30, check=False).stdout
    script.unlink(missing_ok=True)
    requests = re.search(r"(\d+) requests in", out)
    total = int(requests.group(1)) if requests else 0
    duration = re.search(r"requests in ([\d.]+)(m?s)", out)
    secs = (
        float(duration.group(1)) / (1000 if duration.group(2) == "ms" else 1) if duration else float(seconds)
    )
    bad = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)% +(\S+)$", out, re.M)}
    return {"rps": round((total - bad) / secs, 1), "requests": total, "non_2xx": bad, "socket_errors": errors,
            "p50_ms": pct.get("50"), "p99_ms": pct.get("99")}  # fmt: skip


def _ms(text: str) -> float:
    value = float(re.sub(r"[a-z]+$", "", text))
    unit = re.sub(r"^[\d.]+", "", text)
    return round(value * {"us": 0.001, "ms": 1.0, "s": 1000.0}.get(unit, 1.0), 3)


async def open_loop(
    targets: list[str], rate: float, seconds: float, path: str = "/v1/chat/completions",
    headers: dict[str, str] | None = None, weights: list[float] | None = None,
) -> list[tuple[float, int, int, float]]:  # fmt: skip
    """Send ``rate`` req/s for ``seconds`` (open loop: on schedule, whatever the answers), spreading over
    ``targets`` by ``weights``. Returns (scheduled offset, target index, status, latency seconds)."""
    import aiohttp

    weights = weights or [1.0] * len(targets)
    credit = [0.0] * len(targets)
    results: list[tuple[float, int, int, float]] = []
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(offset: float, index: int) -> None:
            began = time.perf_counter()
            try:
                async with session.post(targets[index] + path, data=CHAT, headers=hdrs) as resp:
                    await resp.read()
                    status = resp.status
            except aiohttp.ClientError:
                status = 0
            results.append((offset, index, status, time.perf_counter() - began))

        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        total = sum(weights)
        for i in range(int(rate * seconds)):
            offset = i / rate
            for j, w in enumerate(weights):  # deterministic weighted spread (largest remainder)
                credit[j] += w / total
            index = max(range(len(targets)), key=lambda j: credit[j])
            credit[index] -= 1.0
            delay = start + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(offset, index)))
        await asyncio.gather(*tasks)
    return results


VEGETA = "github.com/tsenart/vegeta/v12@v12.13.0"


def install_vegeta() -> str | None:
    """vegeta, a constant-rate HTTP load generator in Go, built from the Go module proxy on first use."""
    exe = CACHE / "bin" / "vegeta"
    if not exe.exists() and shutil.which("go"):
        exe.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOBIN": str(exe.parent), "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["go", "install", VEGETA], env=env, capture_output=True, timeout=900, check=False)
    return str(exe) if exe.exists() else None


def vegeta_attack(
    exe: str, url: str, rate: int, seconds: float, core: str, workdir: Path,
    headers: dict[str, str] | None = None,
) -> list[tuple[float, int, int, float]]:  # fmt: skip
    """POST the chat body to ``url`` at exactly ``rate`` req/s (open loop) with vegeta, pinned to ``core``.
    Returns rows shaped like :func:`open_loop`'s: (offset s, 0, status, latency s)."""
    body = workdir / "vegeta-body.json"
    body.write_bytes(CHAT)
    lines = [f"POST {url}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    target = "\n".join([*lines, f"@{body}", ""]).encode()
    attack = [exe, "attack", f"-rate={rate}/s", f"-duration={seconds:g}s", "-keepalive=true", "-timeout=30s"]
    raw = subprocess.run(
        pinned(core, attack), input=target, capture_output=True, timeout=seconds + 60, check=True
    ).stdout
    csv = subprocess.run(
        [exe, "encode", "--to", "csv"], input=raw, capture_output=True, timeout=60, check=True
    ).stdout.decode()
    rows = [line.split(",", 3) for line in csv.splitlines() if line]
    if not rows:
        return []
    first = min(int(r[0]) for r in rows)
    return [((int(r[0]) - first) / 1e9, 0, int(r[1]), int(r[2]) / 1e9) for r in rows]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, indent=2, sort_keys=False))
