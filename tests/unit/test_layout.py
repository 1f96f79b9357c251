"""The shipped package stands alone: the development harness (``dev/llmroute_dev``) is not part of it, and
nothing in it looks for a source checkout around itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from llmroute.cli.main import main

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "llmroute"


def _modules() -> list[Path]:
    found = sorted(PACKAGE.rglob("*.py"))
    assert len(found) > 50, f"the package was not found under {PACKAGE}"
    return found


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_package_never_imports_the_development_harness() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            n for n in _imported(ast.parse(path.read_text())) if n.split(".")[0] == "llmroute_dev"
        )
        for path in _modules()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_module_walks_up_to_a_checkout() -> None:
    # a file under operator/llmroute/ that climbs more than its own package (parents[2] and up) is looking
    # for the repository around an installed wheel, where there is none
    climbing = [
        str(path.relative_to(PACKAGE))
        for path in _modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "parents"
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, int)
        and node.slice.value >= 2
    ]
    assert climbing == []


@pytest.mark.parametrize(("command", "hint"), [("demo", "make demo"), ("dev", "make dev-up")])
def test_development_commands_point_to_the_checkout(
    command: str, hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "up"] if command == "dev" else [command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "source checkout" in err and hint in err, err
