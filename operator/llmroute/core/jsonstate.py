"""Tolerant readers for persisted decision state: a bad or foreign value reads as "nothing remembered"."""

from __future__ import annotations

import math


def pairs(value: object) -> list[tuple[float, float]]:
    """A list of ``[number, number]`` pairs; anything malformed is skipped."""
    out: list[tuple[float, float]] = []
    if not isinstance(value, list):
        return out
    for item in value:
        if isinstance(item, list | tuple) and len(item) == 2:
            a, b = item
            if isinstance(a, int | float) and isinstance(b, int | float):
                out.append((float(a), float(b)))
    return out


def number(value: object, default: float | None = None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    x = float(value)
    return x if math.isfinite(x) else default


def integer(value: object, default: int) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default


def text(value: object, default: str = "") -> str:
    return value if isinstance(value, str) else default
