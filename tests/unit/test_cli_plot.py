"""`--plot FILE` (simulate, report) saves the image at FILE in the format its suffix names, PNG without one;
a FILE that cannot be saved (a suffix no image format has, a directory, a missing directory) is one line
naming --plot and exit 2 before any work, never a traceback after the run or a file under another name."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmroute.cli.main import main

TRACE = "timestamp,requests\n" + "".join(f"2025-03-02T16:{m:02d}:00Z,{600 + 10 * m}\n" for m in range(30))

COMMANDS = {
    "simulate": lambda d: ["simulate", "--trace", f"{d}/t.csv", "--out", f"{d}/o.csv", "--no-frontier"],
    "report": lambda d: ["report", "--trace", f"{d}/t.csv"],
}
MAGIC = {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("plot.txt", r"'.txt' is not an image format matplotlib saves (avif, "),
        ("plot.csv", r"'.csv' is not an image format"),
        ("no/plot.png", "no directory"),
        (".", "is a directory"),
    ],
)
def test_a_plot_file_that_cannot_be_saved_is_refused_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, name: str, says: str
) -> None:
    (tmp_path / "t.csv").write_text(TRACE)
    plot = tmp_path / name
    assert main([*COMMANDS[command](tmp_path), "--plot", str(plot), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.startswith(f"llmroute {command}: --plot {plot}: ") and says in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]  # nothing written, the run not made


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(("name", "kind"), [("plot", "png"), ("plot.SVG", "svg"), ("plot.pdf", "pdf")])
def test_the_plot_is_saved_where_asked_in_its_suffix_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, name: str, kind: str
) -> None:
    (tmp_path / "t.csv").write_text(TRACE)
    assert main([*COMMANDS[command](tmp_path), "--plot", str(tmp_path / name), "--quiet"]) == 0
    capsys.readouterr()
    assert (tmp_path / name).read_bytes().startswith(MAGIC[kind])
    assert not (tmp_path / f"{name}.png").exists()


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--out", "{d}/t.csv"], "--out {d}/t.csv: is the --trace file, which it would overwrite"),
        (["--out", "{d}/link.csv"], "--out {d}/link.csv: is the --trace file, which it would overwrite"),
        (["--out", "{d}/sub/../t.csv"], "--out {d}/sub/../t.csv: is the --trace file"),
        (["--out", "{d}/r.yaml", "--route", "{d}/r.yaml"], "--out {d}/r.yaml: is the --route file"),
        (["--out", "{d}/o.png", "--plot", "{d}/o.png"], "--plot {d}/o.png: is the --out file too"),
        (["--out", "{d}/o.csv", "--plot", "{d}/t.png"], "--plot {d}/t.png: is the --trace file"),
    ],
)
def test_simulate_never_writes_over_its_input_or_its_other_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], says: str
) -> None:
    trace = tmp_path / ("t.png" if "{d}/t.png" in flags else "t.csv")
    trace.write_text(TRACE)
    (tmp_path / "link.csv").symlink_to(trace)
    (tmp_path / "r.yaml").write_text("kind: LLMRoute\n")
    (tmp_path / "sub").mkdir()
    argv = ["simulate", "--trace", str(trace), "--no-frontier", "--quiet"]
    assert main([*argv, *(f.format(d=tmp_path) for f in flags)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"llmroute simulate: {says.format(d=tmp_path)}" in err, err
    assert trace.read_text() == TRACE and (tmp_path / "r.yaml").read_text() == "kind: LLMRoute\n"
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("source", ["--trace", "--access-log", "--route-file"])
def test_report_never_saves_its_plot_over_its_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    victim = tmp_path / "in.png"
    victim.write_text("kept\n")
    argv = ["report", source, str(victim), "--plot", str(victim), "--quiet"]
    assert main(argv) == 2
    assert f"llmroute report: --plot {victim}: is the {source} file" in capsys.readouterr().err
    assert victim.read_text() == "kept\n"
