"""Entry point of the ``llmroute`` command: dispatches to one module per subcommand.

Each subcommand module exposes ``add_parser(subparsers) -> None`` (registering itself) and
``run(args) -> int``. Modules are imported lazily so ``llmroute proxy`` does not pay for the operator's
imports and vice versa.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence

from llmroute import __version__

# subcommand -> (module, one-line help: the same as the module's own, which `llmroute --help` shows without
# importing it)
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("llmroute.cli.simulate", "replay a traffic trace through the scaling policies"),
    "report": (
        "llmroute.cli.report",
        "usage patterns and suggested limits from a trace, access logs or Prometheus",
    ),
    "operator": ("llmroute.cli.operator", "run the operator (kopf)"),
    "proxy": ("llmroute.cli.proxy", "run the OpenAI-compatible proxy from a rendered config"),
    "render": ("llmroute.cli.render", "print what the operator would write for an LLMRoute"),
    "validate": ("llmroute.cli.validate", "validate LLMRoute manifests as the apiserver would, offline"),
    "release-routes": (
        "llmroute.cli.release",
        "stop the operator and remove its finalizer from every LLMRoute",
    ),
}
# development commands that live in the source checkout's dev/ root, not in this package
IN_CHECKOUT = {"demo": "make demo", "dev": "make dev-up"}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmroute",
        description="llmroute: Kubernetes operator and autoscaler for OpenAI-compatible LLM gateways.",
    )
    parser.add_argument("--version", action="version", version=f"llmroute {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        if name == wanted:
            module = importlib.import_module(module_name)
            module.add_parser(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in IN_CHECKOUT:
        command = args_list[0]
        print(f"llmroute {command} runs from a source checkout: `{IN_CHECKOUT[command]}`", file=sys.stderr)
        return 2
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        code: int = module.run(args)
        sys.stdout.flush()  # here, not at exit, where a closed pipe is reported as "Exception ignored"
    except BrokenPipeError:
        # the reader left (`| head`): stop quietly (Python's documented recipe), with the status a shell
        # gives a command that SIGPIPE ended (141), as `seq 1000000 | head -1` does under pipefail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return code


if __name__ == "__main__":
    raise SystemExit(main())
