"""``python -m llmroute_dev.node``: build the image, run a node in the foreground, or sweep leftovers.

image [--force]   build (or reuse) the llmroute image; print its reference, archive, sizes, build time
up                build the image, start the node, print the kubeconfig; Ctrl-C (or SIGTERM) tears it down
sweep             undo what a killed run left behind (processes, bridge, iptables chains, mounts)
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from llmroute_dev.node.image import build
from llmroute_dev.node.node import Node, sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmroute_dev.node")
    sub = parser.add_subparsers(dest="command", required=True)
    image = sub.add_parser("image", help="build the llmroute image without a Docker daemon")
    image.add_argument("--force", action="store_true", help="rebuild even when the inputs are unchanged")
    sub.add_parser("up", help="start a node with the image loaded; Ctrl-C tears it down")
    sub.add_parser("sweep", help="undo what a killed run left behind")
    args = parser.parse_args(argv)
    if args.command == "image":
        print(json.dumps(build(force=args.force).to_json(), indent=2))
    elif args.command == "sweep":
        print("\n".join(sweep()) or "nothing to sweep")
    else:
        node = Node((build(),)).start()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        took = node.timings["start_seconds"]
        print(f"node up in {took:.1f} s; export KUBECONFIG={node.kubeconfig}", flush=True)
        try:
            stop.wait()
        finally:
            print("\n".join(node.stop()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
