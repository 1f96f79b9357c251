"""Shared pieces of the operator benchmarks: the local environment, an operator subprocess, and
reading a process's RSS and CPU time from /proc."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from llmroute_dev.procs import Process, free_port
from llmroute_dev.prometheus import Series
from llmroute_dev.session import DevEnv, dev_env

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Bench:
    env: DevEnv
    api: client.ApiClient
    workdir: Path


@contextlib.contextmanager
def environment(backfill: tuple[Series, ...] = (), scrape_interval: str = "5s") -> Iterator[Bench]:
    with tempfile.TemporaryDirectory(prefix="llmroute-bench-") as tmp:
        workdir = Path(tmp)
        with dev_env(workdir, backfill=backfill, scrape_interval=scrape_interval) as env:
            api = config.new_client_from_config(config_file=str(env.control_plane.kubeconfig))
            yield Bench(env, api, workdir)


def start_operator(bench: Bench, namespaces: list[str], **env: str) -> Process:
    variables = dict(
        os.environ,
        KUBECONFIG=str(bench.env.control_plane.kubeconfig),
        LLMROUTE_PROMETHEUS_URL=bench.env.prometheus.url,
        LLMROUTE_METRICS_PORT=str(free_port()),
        LLMROUTE_SCRAPE_INTERVAL_SECONDS="5",  # environment()'s Prometheus scrapes every 5 s
    )
    variables.update(env)
    scope = [f"--namespace={ns}" for ns in namespaces] or ["--all-namespaces"]
    argv = [
        sys.executable,
        "-m",
        "llmroute",
        "operator",
        *scope,
        f"--liveness=http://127.0.0.1:{free_port()}/healthz",
    ]
    return Process("operator", argv, bench.workdir / "operator.log", env=variables).start()


def namespace(api: client.ApiClient, name: str) -> str:
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
