"""Print a recommendation patch as YAML with the reasoning as a comment on the line it explains.

A small emitter for the shapes a patch has (mappings, lists of named mappings, scalars): PyYAML drops
comments, and a comment per line is the point here. Scalars are written as JSON, which YAML reads as the
same values (strings quoted, so ``09:00`` stays a string). Paths name list items by their ``name``:
``spec.rateLimits.tiers[batch].requestsPerMinute``.
"""

from __future__ import annotations

import json
from typing import Any


def _scalar(value: Any) -> str:
    return json.dumps(value)


def _lines(value: Any, path: str, indent: str, reasons: dict[str, str], out: list[str], first: str) -> None:
    """Emit mapping ``value`` at ``indent``; ``first`` prefixes the first line (``- `` in a list)."""
    prefix = first
    for key, item in value.items():
        here = f"{path}.{key}" if path else key
        lead = indent + prefix
        prefix = " " * len(first)
        if isinstance(item, dict) and item:
            out.append(_comment(f"{lead}{key}:", reasons.get(here)))
            _lines(item, here, indent + " " * len(first) + "  ", reasons, out, "")
        elif isinstance(item, list) and item:
            out.append(_comment(f"{lead}{key}:", reasons.get(here)))
            for element in item:
                name = element.get("name") if isinstance(element, dict) else None
                where = f"{here}[{name}]" if name is not None else here
                if isinstance(element, dict):
                    _lines(element, where, indent + " " * len(first) + "  ", reasons, out, "- ")
                else:
                    out.append(f"{indent}{' ' * len(first)}  - {_scalar(element)}")
        else:
            empty = "{}" if isinstance(item, dict) else "[]" if isinstance(item, list) else _scalar(item)
            out.append(_comment(f"{lead}{key}: {empty}", reasons.get(here)))


def _comment(line: str, reason: str | None) -> str:
    return f"{line}  # {reason}" if reason else line


def render(patch: dict[str, Any], recommendations: list[dict[str, Any]]) -> str:
    """The patch as commented YAML; recommendations without a value become comments at the top."""
    reasons = {r["path"]: r["reason"] for r in recommendations if r["value"] is not None}
    out = [f"# {r['path']}: {r['reason']}" for r in recommendations if r["value"] is None]
    _lines(patch, "", "", reasons, out, "")
    return "\n".join(out) + "\n"
