"""Every command that reads a route file (validate, render, simulate --route, report --route-file) reads
it the same way: whatever is wrong with the file is one problem on stderr naming the file (and the line or
the field as the apiserver spells it), a non-zero exit and nothing on stdout; never a traceback."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from llmroute.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = (ROOT / "manifests" / "examples" / "minimal.yaml").read_text()
TRACE = "timestamp,requests\n" + "".join(f"2025-03-02T16:{m:02d}:00Z,600\n" for m in range(30))

BAD = [
    # (file content, what the problem says)
    pytest.param(
        "apiVersion: llmroute.io/v1alpha1\nkind: LLMRoute\nmetadata: {name: x}\nspec: "
        + "[" * 5000
        + "]" * 5000
        + "\n",
        r"nested too deeply to parse",
        id="deep-nesting",
    ),
    pytest.param("just words\n", r"no LLMRoute in the file|document 0: must be an object", id="a-string"),
    pytest.param("kind: LLMRoute\nspec: [open\n", r"YAML syntax error at line 3, column 1", id="broken-yaml"),
    pytest.param(
        MINIMAL.replace("model: gpt-4o-mini", "model: 42"),
        r"invalid LLMRoute:\n  spec\.upstreams\[0\]\.model: Input should be a valid string",
        id="wrong-type",
    ),
    pytest.param(
        "kind: LLMRoute\nkind: LLMRoute\n", r"line 2, column 1: duplicate key 'kind'", id="duplicate-key"
    ),
    # what the apiserver refuses outside the spec's models: every command refuses it as validate does
    pytest.param(
        MINIMAL.replace("llmroute.io/v1alpha1", "llmroute.io/v9"),
        r"invalid LLMRoute:\n  apiVersion: must be llmroute\.io/v1alpha1, not 'llmroute\.io/v9'",
        id="wrong-api-version",
    ),
    pytest.param(
        MINIMAL.replace("\nspec:", "\nspecs: {}\nspec:"),
        r'invalid LLMRoute:\n  specs: unknown field "specs"',
        id="unknown-top-level-field",
    ),
    pytest.param(
        MINIMAL.replace("  name: chat", "  name: chat\n  nmespace: team-a"),
        r'invalid LLMRoute:\n  metadata\.nmespace: unknown field "metadata\.nmespace"',
        id="unknown-metadata-field",
    ),
    pytest.param(
        MINIMAL.replace("  name: chat", "  name: chat\n  namespace: Team_A"),
        r"invalid LLMRoute:\n  metadata\.namespace: a lowercase RFC 1123 label",
        id="bad-namespace",
    ),
    pytest.param(
        MINIMAL.replace("  name: chat", "  name: chat\n  labels: {'a/b/c': x}"),
        r"invalid LLMRoute:\n  metadata\.labels: 'a/b/c': prefix part",
        id="bad-label-key",
    ),
]

COMMANDS = {
    "render": lambda route, d: ["render", route],
    "simulate": lambda route, d: [
        "simulate",
        "--trace",
        f"{d}/t.csv",
        "--route",
        route,
        "--out",
        f"{d}/o.csv",
    ],
    "report": lambda route, d: ["report", "--trace", f"{d}/t.csv", "--route-file", route, "--quiet"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(("content", "says"), BAD)
def test_a_bad_route_file_is_one_problem_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, content: str, says: str
) -> None:
    (tmp_path / "t.csv").write_text(TRACE)
    route = tmp_path / "r.yaml"
    route.write_text(content)
    assert main(COMMANDS[command](str(route), str(tmp_path))) != 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith(f"llmroute {command}: {route}: "), err
    assert re.search(says, err), err


@pytest.mark.parametrize(("content", "says"), BAD)
def test_validate_says_the_same_in_its_own_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, says: str
) -> None:
    route = tmp_path / "r.yaml"
    route.write_text(content)
    assert main(["validate", str(route)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"{route}: "), err
    assert re.search(says.replace(r"invalid LLMRoute:\n  ", ""), err), err


@pytest.mark.parametrize(
    ("flag", "says"),
    [
        (["--at", "tomorrow"], "argument --at: 'tomorrow' is not an ISO-8601 time"),
        (["--replicas", "0"], "argument --replicas: '0' is not an integer from 1 to 10000"),
        (["--replicas", "100000"], "argument --replicas: '100000' is not an integer from 1 to 10000"),
    ],
)
def test_render_refuses_a_flag_out_of_range_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: list[str], says: str
) -> None:
    route = tmp_path / "r.yaml"
    route.write_text(MINIMAL)
    with pytest.raises(SystemExit) as exit_:
        main(["render", str(route), *flag])
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", ["simulate", "report", "render", "validate", "proxy", "operator", "release-routes"]
)
def test_every_flag_that_takes_a_value_says_its_default(command: str) -> None:
    parser = build_parser([command])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    quiet = [
        a.option_strings[0]
        for a in sub.choices[command]._actions
        if a.option_strings and a.nargs != 0 and not a.required and "default" not in (a.help or "")
    ]
    assert quiet == [], f"llmroute {command}: {quiet} say no default"
