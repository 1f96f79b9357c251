"""`llmroute validate FILE...`: check LLMRoute manifests offline, as the apiserver would.

Every problem is one line naming the file, the document's index (from 0) and the field as the apiserver
spells it (``spec.rateLimits.tiers[0].requestsPerMinute``); the exit code is 1 if there is any. A file that
cannot be read, is not UTF-8 or not YAML, a document that is not an object, an LLMRoute whose ``apiVersion``
or ``metadata`` the apiserver would refuse, and a file holding no LLMRoute at all are problems too. The
checks are the models' (:mod:`llmroute.spec`), which hold the same rules as the CRD's schema and CEL rules
(the shared case table in ``tests/cases.py`` proves both refuse the same routes), including the route name
the proxy's children need (``<name>-proxy`` must be a DNS-1035 label), and Kubernetes' own rules outside
the schema (:mod:`llmroute.cli.kubemeta`: metadata, unknown fields, duplicate YAML keys).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from llmroute import KIND
from llmroute.cli.routefile import RouteFileError, check, kind_of, manifests, read_documents


def add_parser(sub: Any) -> None:
    p = sub.add_parser("validate", help="validate LLMRoute manifests as the apiserver would, offline")
    p.add_argument("files", nargs="+", type=Path, help="YAML files (multi-document allowed)")


def read(path: Path) -> tuple[list[Any], list[str]]:
    """The documents of ``path``, or the problem that stops it being read (one line)."""
    try:
        return read_documents(path), []
    except RouteFileError as exc:
        return [], [str(exc)]


def problems(doc: dict[str, Any]) -> list[str]:
    """What the apiserver would refuse in one LLMRoute document, as ``field: message`` strings."""
    return check(doc)[1]


def check_file(path: Path) -> tuple[list[str], list[str]]:
    """(problems, the routes found valid) of one file, each a line to print."""
    docs, found = read(path)
    if found:
        return found, []
    valid: list[str] = []
    routes = 0
    for where, doc in manifests(path, docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            found.append(f"{where}: must be an object (a Kubernetes manifest), not {kind_of(doc)}")
            continue
        if doc.get("kind") != KIND:
            continue
        routes += 1
        metadata = doc.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        label = f"{where} (LLMRoute {name})" if isinstance(name, str) else f"{where} (LLMRoute)"
        these = [f"{label}: {p}" for p in problems(doc)]
        found += these
        if not these:
            valid.append(f"{label}: valid")
    if routes == 0 and not found:
        found.append(f"{path}: no LLMRoute in the file (no document has kind: {KIND})")
    return found, valid


def run(args: argparse.Namespace) -> int:
    failed = False
    for path in args.files:
        found, valid = check_file(path)
        for line in valid:
            print(line)
        for line in found:
            print(line, file=sys.stderr)
        failed = failed or bool(found)
    return 1 if failed else 0
