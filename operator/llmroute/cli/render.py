"""`llmroute render ROUTE.yaml`: print what the operator would write for a route — the proxy config and,
with it, the Deployment, Service and ConfigMap — from the same pure code the operator runs.

With ``--config-only`` it prints just ``config.json``, ready for ``llmroute proxy --config``:

    llmroute render route.yaml --config-only > config.json && llmroute proxy --config config.json
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from llmroute.cli.argtypes import image_reference, iso_time, number
from llmroute.cli.routefile import RouteFileError, load_route
from llmroute.core.ratelimit import ShedState, plan
from llmroute.render import build_children, build_proxy_config
from llmroute.sim.run import replicas_limit
from llmroute.spec.proxyconfig import ProxyConfig
from llmroute.spec.route import LLMRoute
from llmroute.spec.upstream import DEFAULT_IMAGE


def add_parser(sub: Any) -> None:
    p = sub.add_parser("render", help="print what the operator would write for an LLMRoute")
    p.add_argument("route", type=Path, help="LLMRoute YAML file (the first LLMRoute in it is used)")
    p.add_argument(
        "--replicas",
        type=number(int, 1, replicas_limit()),
        default=None,
        help=f"replica count to divide limits by, 1 to {replicas_limit()} (default: the route's minReplicas)",
    )
    p.add_argument("--namespace", default=None, help="namespace when the file sets none (default: default)")
    p.add_argument("--config-only", action="store_true", help="print only the proxy config (config.json)")
    p.add_argument(
        "--proxy-image",
        type=image_reference,
        default=DEFAULT_IMAGE,
        help="the proxies' image when the route names none, as the operator's LLMROUTE_PROXY_IMAGE "
        f"(default: {DEFAULT_IMAGE})",
    )
    p.add_argument(
        "--at",
        type=iso_time,
        default=None,
        help="ISO-8601 time for time-of-day limit schedules, UTC without an offset (default: now), e.g. "
        "2026-03-02T09:30:00Z",
    )


def steady_config(route: LLMRoute, replicas: int, now: datetime) -> ProxyConfig:
    """The config at ``now`` for a route steady at ``replicas`` (no scale transition, nothing shed)."""
    limits = plan(
        route.spec,
        now=now,
        current_replicas=replicas,
        desired_replicas=replicas,
        utilisation=None,
        at_max=False,
        state=ShedState(),
    )
    return build_proxy_config(route, limits=limits.limits, divisor=limits.divisor, replicas=replicas)


def run(args: argparse.Namespace) -> int:
    try:
        route = load_route(args.route, args.namespace)
    except RouteFileError as exc:
        print(f"llmroute render: {exc}", file=sys.stderr)
        return 2  # bad input, as every command but validate (whose answer it is) says it
    replicas = args.replicas if args.replicas is not None else max(1, route.spec.proxy.min_replicas)
    now = args.at or datetime.now(UTC)
    config = steady_config(route, replicas, now)
    if args.config_only:
        sys.stdout.write(config.dumps())
        return 0
    sys.stdout.write(
        yaml.safe_dump_all(build_children(route, config, replicas, args.proxy_image), sort_keys=False)
    )
    return 0
