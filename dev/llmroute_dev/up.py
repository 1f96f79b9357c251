"""`make dev-up` (``python -m llmroute_dev dev up``): the local control plane (kube-apiserver, etcd,
kube-controller-manager, with the LLMRoute CRD installed) and Prometheus on loopback, in the foreground
until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from llmroute_dev.binaries import find
from llmroute_dev.session import dev_env


def add_parser(sub: Any) -> None:
    p = sub.add_parser("dev", help="start the local control plane and Prometheus")
    dev = p.add_subparsers(dest="dev_command", metavar="ACTION", required=True)
    up = dev.add_parser("up", help="start everything; stop with Ctrl-C")
    up.add_argument("--workdir", type=Path, default=None, help="state directory (default: a temp dir)")
    up.add_argument("--for-seconds", type=float, default=None, help="stop by itself after this long")


def run(args: argparse.Namespace) -> int:
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="llmroute-dev-"))
    started = time.monotonic()
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    with dev_env(workdir) as env:
        kubectl = find("kubectl")
        print(f"control plane ready in {time.monotonic() - started:.1f}s")
        print(f"  export KUBECONFIG={env.control_plane.kubeconfig}")
        if kubectl:
            print(f"  alias kubectl={kubectl}")
        print(f"  export LLMROUTE_PROMETHEUS_URL={env.prometheus.url}")
        print(f"  scrape targets file: {env.prometheus.targets_file}")
        print(f"  logs: {workdir}/*/logs/")
        print("Ctrl-C to stop.", flush=True)
        try:
            while not stop:
                if args.for_seconds is not None and time.monotonic() - started > args.for_seconds:
                    break
                for proc in [*env.control_plane.processes, env.prometheus.process]:
                    if proc is not None:
                        proc.check_alive()
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    print("stopped", flush=True)
    return 0
