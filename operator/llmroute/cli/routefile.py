"""Reading a route file, one way for every command that takes one (``validate``, ``render``,
``simulate --route``, ``report --route-file``).

The file is read as bytes, decoded as UTF-8 and parsed by PyYAML's safe loader that refuses a key given
twice (:class:`~llmroute.cli.kubemeta.StrictLoader`, as kubectl does). Whatever stops that is one
:class:`RouteFileError` naming the file and, for YAML syntax, the line and column; a document nested deeper
than the parser's recursion reaches is one too, not a traceback. Validation errors name each field as the
apiserver spells it (``spec.upstreams[0].model``, :func:`field_path`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llmroute import KIND
from llmroute.cli.kubemeta import StrictLoader
from llmroute.spec import LLMRoute


class RouteFileError(ValueError):
    """A route file that cannot be used: its message names the file (and line, document or field)."""


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the apiserver names the field: ``spec.upstreams[0].url``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def error_lines(exc: ValidationError) -> list[str]:
    """``field: message`` for each error of ``exc``, the field as :func:`field_path` names it."""
    return [
        f"{field_path(tuple(e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors()
    ]


def read_documents(path: Path) -> list[Any]:
    """The YAML documents of ``path``; raises :class:`RouteFileError` (one line) when the file cannot be
    read, is not UTF-8, is not YAML or nests deeper than the parser can follow."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RouteFileError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start : exc.start + 1]
        raise RouteFileError(f"{path}: not UTF-8 text (byte {exc.start} is {byte!r})") from None
    try:
        return list(yaml.load_all(text, Loader=StrictLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RouteFileError(f"{path}: YAML syntax error{where}: {problem}") from None
    except RecursionError:
        raise RouteFileError(
            f"{path}: nested too deeply to parse (hundreds of levels; no manifest nests so deep)"
        ) from None


def manifests(path: Path, docs: list[Any]) -> Iterator[tuple[str, Any]]:
    """Each document with where it is (``FILE: document N``); the items of a ``kind: List`` (what
    ``kubectl get -o yaml`` writes, and ``kubectl apply`` accepts) each on their own."""
    for index, doc in enumerate(docs):
        where = f"{path}: document {index}"
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else None
        if isinstance(items, list):
            for item, obj in enumerate(items):
                yield f"{where} item {item}", obj
        else:
            yield where, doc


def route_document(path: Path) -> tuple[str, dict[str, Any]]:
    """Where the first LLMRoute of ``path`` is and the document itself; raises :class:`RouteFileError`."""
    for where, doc in manifests(path, read_documents(path)):
        if isinstance(doc, dict) and doc.get("kind") == KIND:
            return where, doc
    raise RouteFileError(f"{path}: no LLMRoute in the file (no document has kind: {KIND})")


def invalid(path: Path, exc: ValidationError) -> RouteFileError:
    """``exc`` as the error the commands print: ``FILE: invalid LLMRoute:`` then ``  field: message``."""
    return RouteFileError(
        f"{path}: invalid LLMRoute:\n" + "\n".join(f"  {line}" for line in error_lines(exc))
    )


def load_route(path: Path, namespace: str | None = None) -> LLMRoute:
    """The first LLMRoute of ``path``, validated, in ``namespace`` when given (else its own, else
    ``default``); raises :class:`RouteFileError`."""
    _, doc = route_document(path)
    meta = doc.get("metadata")
    if meta is None:
        meta = doc["metadata"] = {}
    if isinstance(meta, dict) and (namespace or "namespace" not in meta):
        meta["namespace"] = namespace or "default"
    try:
        return LLMRoute.from_object(doc)
    except ValidationError as exc:
        raise invalid(path, exc) from None
