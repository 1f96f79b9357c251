"""The shape of the package, beyond what the import contracts (``.importlinter``, run by ``make lint``)
check statically: the pure layers really load no I/O client at run time, and no module takes part in an
import cycle (counting ``TYPE_CHECKING`` imports, and the package ``__init__`` a ``from package import``
runs first)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import llmroute

PACKAGE = Path(llmroute.__file__).parent
CLIENTS = ("kopf", "kubernetes", "aiohttp", "prometheus_api_client", "prometheus_client", "redis", "urllib3")


@pytest.mark.parametrize("module", ["llmroute.decide", "llmroute.render", "llmroute.core", "llmroute.spec"])
def test_pure_layers_load_no_io_client(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in {CLIENTS!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]", f"importing {module} loads {out.strip()}"


def _graph() -> dict[str, set[str]]:
    """Module -> modules it imports, inside llmroute, plus the package a ``from package import x`` names."""
    graph = grimp.build_graph("llmroute", exclude_type_checking_imports=False)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level != 0 or node.module not in edges:
                continue
            if path.name != "__init__.py" or node.module != module:
                edges.setdefault(module, set()).add(node.module)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_one_class_per_name() -> None:
    seen: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                seen.setdefault(node.name, []).append(str(path.relative_to(PACKAGE)))
    assert {name: where for name, where in seen.items() if len(where) > 1} == {}
