"""`llmroute operator`: run the kopf operator, watching one namespace or the whole cluster; with
``--leader-elect`` only while this process holds the operator's Lease (:mod:`llmroute.cli.standby`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import sys
from typing import Any

from llmroute.cli import standby


def add_parser(sub: Any) -> None:
    p = sub.add_parser("operator", help="run the operator (kopf)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch this namespace (repeatable; default: every namespace)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    p.add_argument(
        "--liveness",
        default=os.environ.get("LLMROUTE_LIVENESS", "http://0.0.0.0:8080/healthz"),
        help="URL of the health endpoint (default: $LLMROUTE_LIVENESS, else http://0.0.0.0:8080/healthz)",
    )
    p.add_argument(
        "--peering",
        default=None,
        help="kopf peering name (several operators, by priority; default: none, standalone)",
    )
    standby.add_arguments(p)
    p.add_argument("--verbose", action="store_true")


def _limit_malloc_arenas() -> None:
    """Worker threads (Kubernetes and Prometheus calls) would each get a glibc arena; two are plenty and
    keep the resident set small (the same as MALLOC_ARENA_MAX=2)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX


def run(args: argparse.Namespace) -> int:
    both = args.leader_elect and args.peering
    problem = "use either --leader-elect or --peering, not both" if both else None
    try:
        if args.leader_elect and not problem:
            standby.settings(args)
    except ValueError as exc:
        problem = str(exc)
    if problem:
        print(f"llmroute operator: {problem}", file=sys.stderr)
        return 2
    _limit_malloc_arenas()
    os.environ.setdefault("LLMROUTE_KOPF_CONNECTIONS", str(16 + 2 * len(args.namespace)))
    import kopf

    import llmroute.handlers  # registers the handlers

    llmroute.handlers.WATCHED_NAMESPACES = tuple(args.namespace)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("kubernetes", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # a Prometheus outage is logged once by the hub, not as a retry warning on every query
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    # the watch-event handler runs on every status update; its success is not news
    logging.getLogger("kopf.objects").addFilter(
        lambda record: "Handler 'on_event' succeeded" not in record.getMessage()
    )
    elector = standby.lead(args) if args.leader_elect else None
    if args.leader_elect and elector is None:
        return 0  # stopped while standing by
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness or None,
        standalone=args.peering is None,
        peering_name=args.peering,
    )
    asyncio.set_event_loop_policy(None)
    if elector is not None:
        elector.release()  # after kopf stopped: a standby takes over without waiting for the Lease to expire
    return 0
