"""`llmroute report`: not implemented yet (owned by a later issue)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    sub.add_parser("report", help="not implemented yet")


def run(args: argparse.Namespace) -> int:
    print("llmroute report: not implemented yet", file=sys.stderr)
    return 2
