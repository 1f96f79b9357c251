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

from llmroute import GROUP, KIND, VERSION
from llmroute.cli.kubemeta import StrictLoader, metadata_problems, unknown_fields
from llmroute.spec import LLMRoute

API_VERSION = f"{GROUP}/{VERSION}"


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


def kind_of(value: Any) -> str:
    """What a YAML value is, in words (``an object``, ``a list``, ``null``...)."""
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number"
    )


def check(doc: dict[str, Any]) -> tuple[LLMRoute | None, list[str]]:
    """One LLMRoute document as the apiserver would take it: the route, or ``None`` and what the apiserver
    would refuse, as ``field: message`` strings (its ``apiVersion``, Kubernetes' rules on ``metadata`` and
    unknown fields, :mod:`llmroute.cli.kubemeta`, then the models' schema and CEL rules)."""
    found: list[str] = []
    if doc.get("apiVersion") != API_VERSION:
        found.append(f"apiVersion: must be {API_VERSION}, not {doc.get('apiVersion')!r}")
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict):
        return None, [*found, f"metadata: must be an object with a name, not {kind_of(metadata)}"]
    found += unknown_fields(doc)
    found += metadata_problems(metadata)
    if not isinstance(doc.get("spec"), dict):
        return None, [*found, f"spec: Required value (an object), not {kind_of(doc.get('spec'))}"]
    try:
        route = LLMRoute.from_object(doc)
    except ValidationError as exc:
        return None, found + error_lines(exc)
    return (None, found) if found else (route, [])


def problem_error(path: Path, found: list[str]) -> RouteFileError:
    """``found`` as the error the commands print: ``FILE: invalid LLMRoute:`` then ``  field: message``."""
    return RouteFileError(f"{path}: invalid LLMRoute:\n" + "\n".join(f"  {line}" for line in found))


def invalid(path: Path, exc: ValidationError) -> RouteFileError:
    """``exc`` as :func:`problem_error` says it."""
    return problem_error(path, error_lines(exc))


def checked(path: Path, doc: dict[str, Any]) -> LLMRoute:
    """The LLMRoute document ``doc`` of ``path`` as a route, when the apiserver would take it (:func:`check`);
    raises :class:`RouteFileError` naming every field it would refuse, as ``llmroute validate`` does."""
    route, found = check(doc)
    if route is None:
        raise problem_error(path, found)
    return route


def load_route(path: Path, namespace: str | None = None) -> LLMRoute:
    """The first LLMRoute of ``path``, checked as ``llmroute validate`` checks it (:func:`checked`), in
    ``namespace`` when given (else its own, else ``default``); raises :class:`RouteFileError`."""
    _, doc = route_document(path)
    meta = doc.get("metadata")
    if meta is None:
        meta = doc["metadata"] = {}
    if isinstance(meta, dict) and (namespace or "namespace" not in meta):
        meta["namespace"] = namespace or "default"
    return checked(path, doc)
