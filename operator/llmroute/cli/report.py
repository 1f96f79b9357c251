"""`llmroute report`: usage patterns of a trace - peak and trough hours, surges, weekdays, clients."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from llmroute.sim.report import analyse, render
from llmroute.sim.trace import default_trace, read_trace
from llmroute.spec.base import check_timezone


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="usage patterns of a trace: peak hours, heavy vs occasional clients",
        description=__doc__.splitlines()[0].split(": ", 1)[-1] if __doc__ else None,
    )
    p.add_argument("--trace", type=Path, help="per-minute trace CSV (default: the packaged ServeGen M-large)")
    p.add_argument(
        "--timezone", default="UTC", help="time zone for hours and weekdays (IANA name, default UTC)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        check_timezone(args.timezone)
        trace = read_trace(args.trace or default_trace())
    except (OSError, ValueError, ZoneInfoNotFoundError) as exc:
        print(f"llmroute report: {exc}", file=sys.stderr)
        return 2
    report = analyse(trace, args.timezone)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0
