"""Argument types for the commands' flags: a value out of range is refused by argparse, which names the
flag (``argument --days: '0' is not a number from 1``), rather than failing later or being used as given."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmroute.sim.image import format_problem
from llmroute.spec.upstream import image_problem


def number(kind: type[int] | type[float], low: float, high: float = math.inf) -> Callable[[str], Any]:
    """An argparse type: a ``kind`` number from ``low`` to ``high`` (NaN refused)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # NaN too
            bound = f"from {low:g}" + ("" if math.isinf(high) else f" to {high:g}")
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} {bound}")
        return value

    return parse


PORT = number(int, 0, 65535)  # 0: any free port
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def image_reference(text: str) -> str:
    """``text`` as a container image reference (argparse type); raises ``ArgumentTypeError``."""
    if (problem := image_problem(text)) is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return text


def log_level(text: str) -> str:
    """An argparse type: a logging level's name, in any case (``info``), as logging spells it (``INFO``)."""
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level ({', '.join(LOG_LEVELS)})")
    return level


def iso_time(text: str) -> datetime:
    """An argparse type: an ISO-8601 time (``2026-03-02T09:30:00Z``); one without an offset is UTC."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time such as 2026-03-02T09:30:00Z"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def output_problem(path: Path, flag: str) -> str | None:
    """Why ``path`` cannot be written as ``flag``'s file (``--out PATH: is a directory``), checked before a
    command does its work; ``None`` when it can be."""
    if path.is_dir():
        return f"{flag} {path}: is a directory"
    if not path.parent.is_dir():
        return f"{flag} {path}: no directory {path.parent}"
    return None


def plot_problem(path: Path, flag: str = "--plot") -> str | None:
    """:func:`output_problem`, then why ``path`` cannot be saved as an image: its suffix names no format
    matplotlib saves, or matplotlib is not installed."""
    problem = output_problem(path, flag)
    if problem is None:
        try:
            problem = format_problem(path)
        except RuntimeError as exc:
            return str(exc)
        problem = problem and f"{flag} {path}: {problem}"
    return problem


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)  # links and other spellings of one file too
    except OSError:  # one of them does not exist yet
        return a.resolve() == b.resolve()


Files = Sequence[tuple[str, Path | None]]


def overwrite_problem(outputs: Files, inputs: Files) -> str | None:
    """Why writing ``outputs`` (flag, path) would destroy an input or another output: a path that is an
    input's file (``--out`` the ``--trace``), or two outputs on one file; ``None`` when none is. Paths that
    are ``None`` (flag not given) or ``-`` (stdin) are left out."""
    written = [(flag, path) for flag, path in outputs if path is not None]
    read = [(flag, path) for flag, path in inputs if path is not None and str(path) != "-"]
    for index, (flag, path) in enumerate(written):
        for other, source in read:
            if _same(path, source):
                return f"{flag} {path}: is the {other} file, which it would overwrite"
        for other, target in written[:index]:
            if _same(path, target):
                return f"{flag} {path}: is the {other} file too; give each its own"
    return None
