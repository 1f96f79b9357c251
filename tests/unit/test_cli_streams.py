"""Every command's output is for a reader that may leave early (`llmroute ... | head -1`): the command
stops quietly with the status a shell gives a command SIGPIPE ended (141), never a BrokenPipeError
traceback on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import llmroute

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "manifests" / "examples" / "minimal.yaml"
TRACE = "timestamp,requests\n" + "".join(f"2025-03-02T16:{m:02d}:00Z,600\n" for m in range(30))

COMMANDS = {
    "simulate": ["simulate", "--trace", "{d}/t.csv", "--out", "{d}/o.csv", "--no-frontier"],
    "simulate-json": ["simulate", "--trace", "{d}/t.csv", "--out", "{d}/o.csv", "--json"],
    "validate": ["validate", str(MINIMAL)],
    "render": ["render", str(MINIMAL)],
    "render-config": ["render", str(MINIMAL), "--config-only"],
    "report": ["report", "--trace", "{d}/t.csv", "--quiet"],
    "report-json": ["report", "--trace", "{d}/t.csv", "--quiet", "--json"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_closed_stdout_ends_the_command_quietly(tmp_path: Path, command: str) -> None:
    (tmp_path / "t.csv").write_text(TRACE)
    argv = [a.format(d=tmp_path) for a in COMMANDS[command]]
    read_end, write_end = os.pipe()
    os.close(read_end)  # no reader from the start: the first write to stdout fails, whatever its size
    source = str(Path(llmroute.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "llmroute", *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    err = proc.stderr.decode()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert proc.returncode == 141, err
