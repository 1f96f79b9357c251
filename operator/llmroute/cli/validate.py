"""`llmroute validate FILE...`: check LLMRoute manifests against the typed spec, offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llmroute.spec import LLMRoute
from llmroute.spec.errors import format_error


def add_parser(sub: Any) -> None:
    p = sub.add_parser("validate", help="validate LLMRoute manifests against the typed spec")
    p.add_argument("files", nargs="+", type=Path, help="YAML files (multi-document allowed)")


def run(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if not doc or doc.get("kind") != "LLMRoute":
                continue
            name = doc.get("metadata", {}).get("name", f"#{index}")
            try:
                LLMRoute.from_object(doc)
            except ValidationError as exc:
                failed += 1
                print(f"{path}: LLMRoute {name} is invalid:\n{format_error(exc)}", file=sys.stderr)
            else:
                print(f"{path}: LLMRoute {name} is valid")
    return 1 if failed else 0
