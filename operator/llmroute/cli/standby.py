"""`llmroute operator --leader-elect`: stand by until this process holds the operator's Lease.

While it stands by the process serves its liveness/readiness URL itself (200, ``{"standby": true}``), so the
kubelet keeps a healthy standby Ready and running; once it leads, that server closes and kopf's own health
endpoint takes the port. SIGTERM or SIGINT while standing by ends the process cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from llmroute.k8s.client import api_client
from llmroute.k8s.leader import ElectionSettings, LeaderElector, identity

SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--leader-elect",
        action="store_true",
        help="act only while holding a Lease: several replicas, one active, the others standing by",
    )
    p.add_argument(
        "--leader-elect-lease-name",
        default="llmroute-operator",
        help="the Lease's name (default llmroute-operator)",
    )
    p.add_argument(
        "--leader-elect-lease-namespace",
        default=None,
        help="the Lease's namespace (default: LLMROUTE_POD_NAMESPACE, else the pod's own namespace)",
    )
    p.add_argument(
        "--leader-elect-lease-seconds",
        type=int,
        default=8,
        help="seconds a holder that stopped renewing keeps the Lease, more than the renew deadline "
        "(default 8)",
    )
    p.add_argument(
        "--leader-elect-renew-deadline-seconds",
        type=int,
        default=6,
        help="seconds the holder tries to renew before it gives up, more than 1.2 x the retry period "
        "(default 6)",
    )
    p.add_argument(
        "--leader-elect-retry-period-seconds",
        type=int,
        default=1,
        help="seconds between attempts to take or renew the Lease, at least 1 (default 1)",
    )


def _namespace(args: argparse.Namespace) -> str:
    if args.leader_elect_lease_namespace:
        return str(args.leader_elect_lease_namespace)
    if os.environ.get("LLMROUTE_POD_NAMESPACE"):
        return os.environ["LLMROUTE_POD_NAMESPACE"]
    return SA_NAMESPACE.read_text().strip() if SA_NAMESPACE.is_file() else "default"


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"standby": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: not news
        pass


def _serve_health(url: str | None) -> ThreadingHTTPServer | None:
    if not url:
        return None
    parts = urlsplit(url)
    server = ThreadingHTTPServer((parts.hostname or "0.0.0.0", parts.port or 80), _Health)
    threading.Thread(target=server.serve_forever, name="standby-health", daemon=True).start()
    return server


def settings(args: argparse.Namespace) -> ElectionSettings:
    """The election's settings from the flags; raises ``ValueError`` naming them when they cannot work."""
    try:
        return ElectionSettings(
            args.leader_elect_lease_name,
            _namespace(args),
            args.leader_elect_lease_seconds,
            args.leader_elect_renew_deadline_seconds,
            args.leader_elect_retry_period_seconds,
        )
    except ValueError as exc:
        raise ValueError(
            f"--leader-elect-lease-seconds, --leader-elect-renew-deadline-seconds, "
            f"--leader-elect-retry-period-seconds: {exc}"
        ) from None


def lead(args: argparse.Namespace) -> LeaderElector | None:
    """Block until this process holds the Lease (returns the elector: release it when done) or a stop
    signal arrives (returns None). Losing the Lease later exits the process at once (status 1)."""
    settings_ = settings(args)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    health = _serve_health(args.liveness)
    try:
        who = identity(os.environ.get("LLMROUTE_POD_NAME") or socket.gethostname())
        elector = LeaderElector(api_client(), settings_, who, on_lost=lambda: os._exit(1)).start()
        leading = elector.wait(stop)
    finally:
        if health is not None:
            health.shutdown()
            health.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return elector if leading else None
