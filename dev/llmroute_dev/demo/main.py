"""`make demo` (``python -m llmroute_dev demo``): llmroute's main job end to end on this machine, no
cluster and no Docker, in minutes.

It starts a real kube-apiserver + etcd + kube-controller-manager and a real Prometheus on loopback, two
fake OpenAI-compatible endpoints (primary and backup), applies the demo LLMRoute
(``route.yaml``) and runs the real operator. A local pod runner keeps real ``llmroute proxy``
processes at the Deployment's replica count and publishes the operator's ConfigMap to them as kubelet
would; Prometheus scrapes them. A load generator replays the busiest day of a production trace,
compressed, through the proxies with several client API keys. Midway the primary endpoint starts
answering 500s, then recovers: the operator fails over to the backup group and back.

A table every few seconds, a summary at the end, and checks: the command exits 1 if the route never
scaled up, never failed over or never failed back, so it doubles as a smoke test of the whole system.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import aiohttp

from llmroute.sim.trace import default_trace, read_trace
from llmroute_dev.binaries import find
from llmroute_dev.demo import system as demosystem
from llmroute_dev.demo.loadgen import LoadGenerator
from llmroute_dev.demo.monitor import Monitor, header, row
from llmroute_dev.demo.report import Outage, checks, summary
from llmroute_dev.demo.traceshape import Shape, compress
from llmroute_dev.procs import wait_for

FAIL_AT, RECOVER_BY = 0.3, 0.75  # fractions of --duration: the primary breaks; mended at the latest
MIN_OUTAGE = 10.0  # seconds the primary stays broken at least (and until the route has failed over)
GRACE = 60.0  # seconds of extra traffic to wait for a failback still under way
POLL_PATIENCE = 30.0  # seconds the route's state may be unreadable before the demo gives up
LEGEND = """
offered: req/s the load generator sent; observed: req/s Prometheus saw at the proxies; replicas: the
Deployment's spec.replicas (the operator's decision) / proxy processes ready; active: the upstream group in
the operator's ConfigMap; served by: which endpoint answered; 429/s: rate-limited answers; p95: end-to-end
latency of served requests; Ready, FailedOver: the LLMRoute's conditions; last decision: its reason.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole system locally: control plane, Prometheus, operator, proxy",
        description=(__doc__ or "").split("\n\n")[1],
    )
    p.add_argument("--duration", type=float, default=180.0, help="seconds of traffic (default 180)")
    p.add_argument(
        "--speed",
        type=float,
        default=480.0,
        help="trace seconds per real second (default 480: a day in 3 min)",
    )
    p.add_argument("--peak-rps", type=float, default=100.0, help="offered req/s at the peak (default 100)")
    p.add_argument(
        "--trace", type=Path, default=None, help="per-minute trace CSV (default: the packaged one)"
    )
    p.add_argument("--interval", type=float, default=5.0, help="seconds between table rows (default 5)")
    p.add_argument("--keep", action="store_true", help="keep the working directory (logs, configs)")


def run(args: argparse.Namespace) -> int:
    if args.duration < 60:
        print("llmroute demo: --duration must be at least 60 seconds", file=sys.stderr)
        return 2
    trace = read_trace(args.trace or default_trace())
    shape = compress(trace, duration=args.duration, speed=args.speed, peak_rps=args.peak_rps)
    workdir = Path(tempfile.mkdtemp(prefix="llmroute-demo-"))
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(args, shape, workdir)
    except KeyboardInterrupt:
        print("\ninterrupted: everything stopped", flush=True)
        return 130
    except Exception as exc:
        traceback.print_exc()
        print(f"llmroute demo FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if args.keep:
            print(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _run(args: argparse.Namespace, shape: Shape, workdir: Path) -> int:
    began = time.monotonic()
    print(f"llmroute demo: {args.duration:.0f} s of traffic; {shape.describe()}")
    print(
        "starting kube-apiserver, etcd, kube-controller-manager and Prometheus on 127.0.0.1 ...", flush=True
    )
    with contextlib.ExitStack() as stack:
        system = demosystem.start(workdir, stack)
        route = f"{demosystem.NAMESPACE}/{system.demo.name}"
        print(f"LLMRoute {route} applied, operator started; waiting for the first proxy ...", flush=True)
        try:
            wait_for(lambda: _first_ready(system), timeout=90, what="the first proxy")
            print(f"ready after {time.monotonic() - began:.0f} s. {_hints(system)}\n{LEGEND}", flush=True)
            groups = {u["group"]: u["name"] for u in reversed(system.demo.route["spec"]["upstreams"])}
            monitor = Monitor(
                system.api, system.env.prometheus, demosystem.NAMESPACE, system.demo.name, groups
            )
            load = LoadGenerator(system.demo.clients, system.runner.endpoints, system.demo.model)
            outage, interrupted = asyncio.run(_drive(args, shape, system, monitor, load))
        except Exception:
            print(f"\n--- operator log (tail) ---\n{system.operator.tail(40)}", file=sys.stderr)
            raise
        print(summary(monitor, load.total, system.runner, outage, shape))
        if interrupted:
            print("interrupted before the end: no verdict")
            return 130
        failures = checks(monitor, load.total, outage)
        if failures:
            print(f"\n--- operator log (tail) ---\n{system.operator.tail(30)}", file=sys.stderr)
            print(f"llmroute demo FAILED: {'; '.join(failures)}", file=sys.stderr)
            return 1
        print(f"demo passed ({time.monotonic() - began:.0f} s in all); stopping everything", flush=True)
    return 0


def _hints(system: demosystem.System) -> str:
    kubectl = find("kubectl") or "kubectl"
    return (
        "While it runs, look around in another shell:\n"
        f"  export KUBECONFIG={system.env.control_plane.kubeconfig}\n"
        f"  {kubectl} -n {demosystem.NAMESPACE} get llmroute,deploy,cm,events\n"
        f"  Prometheus: {system.env.prometheus.url}"
    )


def _first_ready(system: demosystem.System) -> bool:
    system.operator.check_alive()
    return system.runner.ready > 0


async def _drive(
    args: argparse.Namespace, shape: Shape, system: demosystem.System, monitor: Monitor, load: LoadGenerator
) -> tuple[Outage, bool]:
    """Traffic, the outage, the table; until the trace is over (and the failback seen, or GRACE passed)."""
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted.set)
    stop_load = asyncio.Event()
    start = loop.time()
    monitor.started = time.monotonic()
    outage = Outage()
    tasks = [
        asyncio.create_task(load.run(shape.rate, stop_load, start)),
        asyncio.create_task(_outage(args.duration, monitor, system.endpoints["primary"], outage)),
    ]
    print(header(), flush=True)
    next_row, last_sent, extended = args.interval, 0, False
    try:
        while not interrupted.is_set():
            for proc in system.processes:
                proc.check_alive()
            if tasks[1].done() and tasks[1].exception() is not None:
                raise RuntimeError(f"could not script the primary endpoint: {tasks[1].exception()}")
            try:
                fresh = await asyncio.to_thread(monitor.poll)
            except Exception as exc:  # the API server or Prometheus blinked: show the last known state
                if monitor.elapsed() - monitor.last_success > POLL_PATIENCE:
                    raise RuntimeError(f"cannot read the route's state: {exc}") from exc
                fresh = []
            for t, reason, message in fresh:
                print(f"  [{t:4.0f}s] {reason}: {_one_line(message)}", flush=True)
            elapsed = monitor.elapsed()
            if elapsed >= next_row:
                window = load.take()
                offered = (load.total.sent - last_sent) / args.interval
                last_sent = load.total.sent
                name = monitor.group_name(monitor.now.active_group)
                ready = system.runner.ready
                print(row(elapsed, offered, window, args.interval, monitor.now, ready, name), flush=True)
                next_row += args.interval
            if elapsed >= args.duration:
                mended = outage.recovered_at
                if mended is None or monitor.timeline.group_switch(0, mended) is not None:
                    break
                if elapsed >= args.duration + GRACE:
                    break
                if not extended:
                    print(f"  ... traffic goes on until the route fails back (at most {GRACE:.0f} s more)")
                    extended = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(interrupted.wait(), 1.0)
    finally:
        stop_load.set()
        tasks[1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return outage, interrupted.is_set()


async def _outage(duration: float, monitor: Monitor, primary: demosystem.Endpoint, outage: Outage) -> None:
    """Break the primary endpoint at FAIL_AT; mend it once the route failed over (or at RECOVER_BY)."""

    async def behave(status: int) -> None:
        body = {"default": {"status": status, "latency": demosystem.UPSTREAM_LATENCY[primary.name]}}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{primary.base}/_fake/behavior", json=body) as resp,
        ):
            resp.raise_for_status()

    await asyncio.sleep(max(0.0, FAIL_AT * duration - monitor.elapsed()))
    await behave(500)
    outage.failed_at = monitor.elapsed()
    print(f"  [{outage.failed_at:4.0f}s] >>> the primary endpoint breaks: it answers HTTP 500", flush=True)
    while monitor.elapsed() < RECOVER_BY * duration:
        switched = monitor.timeline.group_switch(1, outage.failed_at)
        if switched is not None and monitor.elapsed() >= outage.failed_at + MIN_OUTAGE:
            break
        await asyncio.sleep(0.2)
    await behave(200)
    outage.recovered_at = monitor.elapsed()
    print(f"  [{outage.recovered_at:4.0f}s] >>> the primary endpoint recovers", flush=True)


def _one_line(text: str, width: int = 150) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
