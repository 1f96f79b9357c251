"""``llmroute --help`` lists each command with the one-line help its own module gives it."""

from __future__ import annotations

import argparse
import importlib

import pytest

from llmroute.cli.main import COMMANDS, build_parser


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
