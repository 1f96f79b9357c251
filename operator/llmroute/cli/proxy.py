"""`llmroute proxy`: serve an OpenAI-compatible gateway from a rendered proxy config file."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from llmroute.cli.argtypes import PORT, log_level, number
from llmroute.render.delivery import API_ACCESS_DIR

DAY = 86400.0  # s: the longest a wait on shutdown may be (a pod's grace period is far shorter)


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "proxy",
        help="run the OpenAI-compatible proxy from a rendered config",
        description="Serve /v1/* from the rendered ProxyConfig at --config, reloading it when it changes.",
    )
    parser.add_argument("--config", required=True, help="path of the rendered config.json (ConfigMap mount)")
    parser.add_argument(
        "--host",
        default=os.environ.get("LLMROUTE_HOST", "0.0.0.0"),
        help="address to listen on (default: $LLMROUTE_HOST, else 0.0.0.0)",
    )
    # string defaults: argparse applies the type to them, so a bad environment value is refused as a flag
    parser.add_argument(
        "--port",
        type=PORT,
        default=os.environ.get("LLMROUTE_PORT", "8080"),
        help="port of the API, 0 to 65535, 0 for any free one (default: $LLMROUTE_PORT, else 8080)",
    )
    parser.add_argument(
        "--metrics-port",
        type=PORT,
        default=os.environ.get("LLMROUTE_PROXY_METRICS_PORT", "9090"),
        help="port of /metrics, /healthz and /readyz (kept off the API port), 0 to 65535 "
        "(default: $LLMROUTE_PROXY_METRICS_PORT, else 9090)",
    )
    parser.add_argument(
        "--reload-interval",
        type=number(float, 0.01, 3600),
        default=1.0,
        help="seconds between config checks, 0.01 to 3600 (default 1)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=number(float, 0, DAY),
        default=30.0,
        help="seconds to finish in-flight requests, 0 to 86400 (default 30)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=number(float, 0, DAY),
        default=0.0,
        help="seconds /readyz fails before closing, 0 to 86400 (default 0)",
    )
    parser.add_argument(
        "--watch-configmap",
        metavar="NAME",
        help="also follow ConfigMap NAME of the pod's namespace through the API (in a cluster): changes "
        "arrive in seconds, the file stays the boot source and fallback (default: the file only)",
    )
    parser.add_argument(
        "--api-credentials",
        default=API_ACCESS_DIR,
        metavar="DIR",
        help="the projected ServiceAccount volume for --watch-configmap (token, ca.crt, namespace; "
        f"default {API_ACCESS_DIR})",
    )
    parser.add_argument(
        "--log-level",
        type=log_level,
        default=os.environ.get("LLMROUTE_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: $LLMROUTE_LOG_LEVEL, else INFO)",
    )


def run(args: argparse.Namespace) -> int:
    from llmroute.proxy.kubewatch import ApiAccess
    from llmroute.proxy.server import ProxyServer
    from llmroute.proxy.server import run as run_server

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    watch = None
    if args.watch_configmap:
        access = ApiAccess.in_cluster(args.api_credentials)
        if access is None:
            logging.getLogger("llmroute.proxy").warning(
                "--watch-configmap %s: no API here (KUBERNETES_SERVICE_HOST, %s/token): the file only",
                args.watch_configmap,
                args.api_credentials,
            )
        else:
            watch = (access, args.watch_configmap)
    server = ProxyServer(
        args.config,
        args.host,
        args.port,
        args.reload_interval,
        args.shutdown_timeout,
        args.metrics_port,
        watch=watch,
    )
    return run_server(server, args.drain_seconds)
