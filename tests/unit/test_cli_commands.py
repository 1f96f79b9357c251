"""``llmroute --help`` lists each command with the one-line help its own module gives it."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from llmroute.cli.main import COMMANDS, build_parser, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_command_list_says_what_the_command_itself_says(name: str) -> None:
    module_name, listed = COMMANDS[name]
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module_name).add_parser(sub)
    own = {action.dest: action.help for action in sub._choices_actions}
    assert own == {name: listed}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_asked_for_gets_its_own_parser(name: str) -> None:
    parser = build_parser([name])
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert subparsers.choices[name].add_help  # the real parser, not the placeholder listed for --help


@pytest.mark.parametrize(
    "args",
    [
        ["render", "{bad}"],
        ["simulate", "--route", "{bad}", "--minutes", "5", "--out", "{out}"],
        ["report", "--route-file", "{bad}"],
    ],
)
def test_every_command_refuses_a_bad_route_file_with_the_same_status(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A route file the command cannot use is bad input: status 2 in every command (render said 1),
    with the file named; only validate, whose answer it is, reports problems with status 1."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: LLMRoute\nmetadata: {name: x}\nspec: {upstreams: []}\n")
    assert main([a.format(bad=bad, out=tmp_path / "out.csv") for a in args]) == 2
    assert str(bad) in capsys.readouterr().err
    assert main(["validate", str(bad)]) == 1
