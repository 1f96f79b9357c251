"""Requests/s per core: llmroute side by side with LiteLLM's proxy, Portkey's gateway and nginx.

Each gateway is pinned to one core (``taskset``) and proxies the same non-streaming chat request to the same
fake upstream; the upstream and ``wrk`` (1 thread, 32 connections) share the other core. llmroute runs
with all its policies on (API-key tiers, per-tier and per-client request and token limits, metrics).
Competitors are installed on first use under ``~/.cache/llmroute/bench`` (LiteLLM from PyPI into its own
virtualenv, Portkey from npm, nginx from Debian); one that cannot be installed is skipped with a note.
Target: llmroute at least Portkey's and at least 10 times LiteLLM's requests/s. Besides wrk's req/s (on
the pinned core), each gateway's own CPU time is read from /proc (process and children), so
``requests_per_cpu_second`` stays meaningful when other work shares the machine.

    .venv/bin/python -m bench.proxy_throughput [--seconds 8] [--only llmroute,nginx]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.proxy_common import (
    CACHE,
    CLIENT_KEY,
    Procs,
    cores,
    emit,
    free_port,
    llmroute_config,
    pinned,
    start_fake,
    start_llmroute,
    tree_cpu_seconds,
    wait_http,
    wrk,
)  # fmt: skip

Target = tuple[str, dict[str, str]]  # (URL to load, headers)


def _run(args: list[str], timeout: float, cwd: Path | None = None) -> bool:
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def install_litellm() -> Path | None:
    venv = CACHE / "litellm-venv"
    exe = venv / "bin" / "litellm"
    if not exe.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        if not _run(["python3", "-m", "venv", str(venv)], 120):
            return None
        _run([str(venv / "bin" / "pip"), "install", "-q", "litellm[proxy]"], 900)
    return exe if exe.exists() else None


def install_portkey() -> Path | None:
    home = CACHE / "portkey"
    script = home / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
    if not script.exists() and shutil.which("npm"):
        home.mkdir(parents=True, exist_ok=True)
        if not (home / "package.json").exists():
            (home / "package.json").write_text('{"name": "bench-portkey", "private": true}\n')
        _run(["npm", "install", "--no-audit", "--no-fund", "@portkey-ai/gateway"], 600, cwd=home)
    return script if script.exists() and shutil.which("node") else None


def install_debian(binary: str, package: str) -> str | None:
    if shutil.which(binary) is None and shutil.which("apt-get"):
        sudo = [] if _is_root() else ["sudo", "-n"]
        _run([*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", package], 600)
    return shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def start_litellm(procs: Procs, core: str, upstream: str, work: Path) -> Target:
    exe = install_litellm()
    if exe is None:
        raise Skip("LiteLLM could not be installed (pip install 'litellm[proxy]')")
    cfg = work / "litellm.yaml"
    cfg.write_text(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/m\n"
        f"      api_base: {upstream}\n      api_key: sk-upstream\n"
        "litellm_settings:\n  telemetry: false\n"
    )
    port = free_port()
    env = {
        "LITELLM_MASTER_KEY": "sk-bench-master",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
    }
    args = [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    proc = procs.start("litellm", pinned(core, args), env)
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", within=180, proc=proc)
    return f"http://127.0.0.1:{port}/v1/chat/completions", {"Authorization": "Bearer sk-bench-master"}


def start_portkey(procs: Procs, core: str, upstream: str, work: Path) -> Target:
    script = install_portkey()
    if script is None:
        raise Skip("Portkey gateway could not be installed (npm install @portkey-ai/gateway)")
    port = free_port()
    proc = procs.start("portkey", pinned(core, ["node", str(script), f"--port={port}", "--headless"]))
    wait_http(f"http://127.0.0.1:{port}/", within=60, proc=proc)
    headers = {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": upstream,
        "Authorization": "Bearer sk-up",
    }
    return f"http://127.0.0.1:{port}/v1/chat/completions", headers


def start_nginx(procs: Procs, core: str, upstream: str, work: Path) -> Target:
    nginx = install_debian("nginx", "nginx-light")
    if nginx is None:
        raise Skip("nginx could not be installed (apt-get install nginx-light)")
    port = free_port()
    host = upstream.split("//")[1].split("/")[0]
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / "nginx" / sub).mkdir(parents=True, exist_ok=True)
    conf = work / "nginx" / "nginx.conf"
    conf.write_text(f"""worker_processes 1;
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx/client_body; proxy_temp_path {work}/nginx/proxy;
  fastcgi_temp_path {work}/nginx/fastcgi; uwsgi_temp_path {work}/nginx/uwsgi;
  scgi_temp_path {work}/nginx/scgi;
  upstream fake {{ server {host}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://fake; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
""")
    user = "" if not _is_root() else "user root;\n"
    conf.write_text(user + conf.read_text())
    proc = procs.start(
        "nginx", pinned(core, [nginx, "-p", str(work / "nginx"), "-c", str(conf), "-g", "daemon off;"])
    )
    wait_http(f"http://127.0.0.1:{port}/v1/models", within=20, proc=proc)
    return f"http://127.0.0.1:{port}/v1/chat/completions", {}


def start_llmroute_target(procs: Procs, core: str, upstream: str, work: Path) -> Target:
    base = start_llmroute(procs, core, llmroute_config(work, upstream))
    return base + "/v1/chat/completions", {"Authorization": f"Bearer {CLIENT_KEY}"}


def start_llmroute_asyncio(procs: Procs, core: str, upstream: str, work: Path) -> Target:
    """llmroute on the standard asyncio loop instead of uvloop: what the loop choice is worth."""
    import os

    os.environ["LLMROUTE_PROXY_LOOP"] = "asyncio"
    try:
        return start_llmroute_target(procs, core, upstream, work)
    finally:
        del os.environ["LLMROUTE_PROXY_LOOP"]


class Skip(Exception):
    pass


GATEWAYS: dict[str, Callable[[Procs, str, str, Path], Target]] = {
    "llmroute": start_llmroute_target,
    "llmroute_asyncio_loop": start_llmroute_asyncio,
    "litellm": start_litellm,
    "portkey": start_portkey,
    "nginx": start_nginx,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", default=",".join(GATEWAYS))
    args = parser.parse_args()
    if shutil.which("wrk") is None and install_debian("wrk", "wrk") is None:
        emit({"benchmark": "proxy_throughput", "skipped": "wrk is not installed (apt-get install wrk)"})
        return
    sut, other = cores()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with Procs(work) as procs:
            upstream = start_fake(procs, other)
            results["direct_upstream"] = wrk(upstream + "/chat/completions", other, {}, 3, args.connections)
        for name in args.only.split(","):
            with Procs(work) as procs:
                upstream = start_fake(procs, other)
                try:
                    url, headers = GATEWAYS[name](procs, sut, upstream, work)
                except (Skip, RuntimeError) as exc:
                    results[name] = {"skipped": str(exc)}
                    continue
                wrk(url, other, headers, 1, args.connections)  # warm-up
                gateway = procs.items[-1].pid
                cpu_before = tree_cpu_seconds(gateway)
                result = wrk(url, other, headers, args.seconds, args.connections)
                cpu = tree_cpu_seconds(gateway) - cpu_before
                ok = result["requests"] - result["non_2xx"]
                result["gateway_cpu_seconds"] = round(cpu, 2)
                result["requests_per_cpu_second"] = round(ok / cpu, 1) if cpu > 0 else None
                results[name] = result
    ours = results.get("llmroute", {}).get("rps", 0.0)
    others = [k for k, v in results.items() if k in ("litellm", "portkey", "nginx") and v.get("rps")]
    ratios = {f"llmroute_over_{k}": round(ours / results[k]["rps"], 2) for k in others}
    ours_cpu = results.get("llmroute", {}).get("requests_per_cpu_second") or 0.0
    cpu_ratios = {f"llmroute_over_{k}": round(ours_cpu / results[k]["requests_per_cpu_second"], 2)
                  for k in others if results[k].get("requests_per_cpu_second")}  # fmt: skip
    emit({"benchmark": "proxy_throughput", "request": "non-streaming chat", "connections": args.connections,
          "seconds": args.seconds, "gateway_core": sut, "upstream_and_wrk_core": other, "results": results,
          "ratios": ratios, "ratios_per_cpu_second": cpu_ratios,
          "targets": {"llmroute_over_portkey": ">= 1", "llmroute_over_litellm": ">= 10"}})  # fmt: skip


if __name__ == "__main__":
    main()
