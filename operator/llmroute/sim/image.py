"""The file a plot is saved to: its format is the name's suffix, in any case (``out.svg``, ``out.PDF``), and
PNG when the name has none. matplotlib would otherwise refuse an unknown suffix only after the run (leaving
an empty file) and save a name without one under another name (``out`` as ``out.png``)."""

from __future__ import annotations

from pathlib import Path

NEEDS_MATPLOTLIB = "--plot needs matplotlib: pip install 'llmroute[plot]'"


def formats() -> list[str]:
    """The formats matplotlib saves; raises ``RuntimeError`` when it is not installed."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(NEEDS_MATPLOTLIB) from exc
    return sorted(FigureCanvasBase.get_supported_filetypes())


def image_format(path: str | Path) -> str:
    """The format ``path`` is saved in: its suffix without the dot, lower case; ``png`` without one."""
    return Path(path).suffix.removeprefix(".").lower() or "png"


def format_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be saved as an image (its suffix names no format matplotlib saves), or ``None``;
    raises ``RuntimeError`` when matplotlib is not installed."""
    supported = formats()
    wanted = image_format(path)
    if wanted in supported:
        return None
    return f"'.{wanted}' is not an image format matplotlib saves ({', '.join(supported)})"
