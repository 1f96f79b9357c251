"""`llmroute release-routes`: stop the operator and remove its finalizer from every LLMRoute, so that no
route is left ``Terminating`` once the operator is gone (the chart runs it as a pre-delete hook)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from llmroute.cli.argtypes import number


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "release-routes", help="stop the operator and remove its finalizer from every LLMRoute"
    )
    p.add_argument("--operator-namespace", required=True, help="namespace of the operator's Deployment")
    p.add_argument("--operator-deployment", required=True, help="name of the operator's Deployment")
    p.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="only routes in this namespace (repeatable; default: every namespace)",
    )
    p.add_argument(
        "--timeout",
        type=number(float, 0, 86400),
        default=120.0,
        help="seconds to wait for the operator to stop, 0 to 86400 (default 120)",
    )


def run(args: argparse.Namespace) -> int:
    from llmroute.k8s.client import api_client
    from llmroute.k8s.release import release_routes, stop_operator

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    api = api_client()
    stop_operator(api, args.operator_namespace, args.operator_deployment, args.timeout)
    for key in release_routes(api, args.namespace or None):
        print(f"released {key}")
    return 0
