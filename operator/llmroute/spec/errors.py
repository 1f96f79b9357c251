"""Validation errors as people read them: one line per problem, each naming the field path as the CRD
spells it (camelCase, list indexes included). Shared by the operator's ``InvalidSpec`` condition, its
create/update handler and ``llmroute validate`` / ``llmroute render``."""

from __future__ import annotations

from pydantic import ValidationError


def format_error(exc: ValidationError) -> str:
    """``exc`` as ``"  <path>: <message>"`` lines joined by newlines (``<root>`` for the object itself)."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {path or '<root>'}: {err['msg']}")
    return "\n".join(lines)
