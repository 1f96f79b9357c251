"""``python -m llmroute_dev COMMAND``: the development commands that run from a source checkout.

  demo      llmroute's main job end to end on loopback (``make demo``)
  dev up    the local control plane and Prometheus in the foreground (``make dev-up``)

Each command module exposes ``add_parser(subparsers)`` and ``run(args) -> int``, as ``llmroute``'s do.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = {"demo": "llmroute_dev.demo.main", "dev": "llmroute_dev.up"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmroute_dev", description="llmroute's development commands (from a source checkout)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).add_parser(sub)
    args = parser.parse_args(argv)
    code: int = importlib.import_module(COMMANDS[args.command]).run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
