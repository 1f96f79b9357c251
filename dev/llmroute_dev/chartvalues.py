"""The chart's ``values.yaml`` as its single source: a strict ``values.schema.json`` and the values table of
the chart's README, both generated from the defaults and the comments (helm-docs conventions).

Comment conventions, on the lines right above a key:

- ``# -- text`` starts the key's description; the ``#`` lines after it continue it. Every leaf (a scalar, a
  list, an open object or map) must have one; the generator refuses a values file with an undocumented leaf.
- ``# -- (type) text`` names the type where the default does not show it: ``(object)`` an open object
  (a Kubernetes type such as affinity: its keys are not listed), ``(map)`` an object of strings (labels,
  annotations, nodeSelector), ``(list)`` a list of objects, or a JSON type (``string``, ``integer``, ...).
- ``# @schema {...}`` merges a JSON-schema fragment into the key's schema (an enum, a minimum, a pattern).

Every object whose keys values.yaml lists is closed (``additionalProperties: false``), so a misspelt key
(``--set iamge.tag=x``) fails ``helm install``/``template``/``lint`` instead of being ignored. ``global`` is
allowed at the top (Helm passes it to subcharts).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]
JSON_TYPES = {"string", "integer", "number", "boolean", "array", "object"}
HINTS: dict[str, Schema] = {
    "object": {"type": "object"},
    "map": {"type": "object", "additionalProperties": {"type": "string"}},
    "list": {"type": "array", "items": {"type": "object"}},
}
BEGIN, END = "<!-- values:begin -->", "<!-- values:end -->"


@dataclass
class Doc:
    """A key's comment: description, type hint, schema fragment."""

    description: str = ""
    hint: str | None = None
    schema: Schema = field(default_factory=dict)


@dataclass
class Leaf:
    """One row of the values table."""

    key: str
    type: str
    default: Any
    description: str


def _doc(lines: list[str], line: int) -> Doc:
    """The comment block right above 0-based ``line``."""
    block: list[str] = []
    i = line - 1
    while i >= 0 and lines[i].strip().startswith("#"):
        block.insert(0, lines[i].strip()[1:].strip())
        i -= 1
    doc, text, started = Doc(), [], False
    for entry in block:
        if entry.startswith("@schema"):
            doc.schema.update(json.loads(entry[len("@schema") :]))
        elif entry.startswith("--"):
            started, text = True, [entry[2:].strip()]
        elif started:
            text.append(entry)
    description = " ".join(t for t in text if t)
    match = re.match(r"^\((\w+)\)\s*(.*)$", description)
    if match:
        doc.hint, description = match.group(1), match.group(2)
    doc.description = description
    return doc


def _json_type(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise ValueError(f"{key}: a null default needs a type: '# -- (string) ...'")


class _Walker:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.leaves: list[Leaf] = []
        self.undocumented: list[str] = []
        self.schema: Schema = {}

    def mapping(self, node: yaml.MappingNode, prefix: str) -> Schema:
        properties: Schema = {}
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            properties[key_node.value] = self.entry(
                key, value_node, _doc(self.lines, key_node.start_mark.line)
            )
        return {"type": "object", "additionalProperties": False, "properties": properties}

    def entry(self, key: str, node: yaml.Node, doc: Doc) -> Schema:
        value = yaml.safe_load(yaml.serialize(node))
        if isinstance(node, yaml.MappingNode) and node.value and doc.hint is None:
            schema = self.mapping(node, f"{key}.")
            if doc.description:
                schema["description"] = doc.description
            return {**schema, **doc.schema}
        if doc.hint in HINTS:
            schema = dict(HINTS[doc.hint])
        elif doc.hint in JSON_TYPES:
            schema = {"type": doc.hint}
        elif doc.hint is not None:
            raise ValueError(f"{key}: unknown type hint ({doc.hint})")
        else:
            schema = {"type": _json_type(value, key)}
            if isinstance(value, list) and value and not isinstance(value[0], (dict, list)):
                schema["items"] = {"type": _json_type(value[0], key)}
        if not doc.description:
            self.undocumented.append(key)
        schema = {"description": doc.description, **schema, **doc.schema}
        shown = doc.hint if doc.hint in HINTS else schema.get("type", "")
        self.leaves.append(Leaf(key, "list" if shown == "array" else str(shown), value, doc.description))
        return schema


def _walk(values_text: str) -> _Walker:
    root = yaml.compose(values_text)
    if not isinstance(root, yaml.MappingNode):
        raise ValueError("values.yaml must be a mapping")
    walker = _Walker(values_text)
    walker.schema = walker.mapping(root, "")
    if walker.undocumented:
        raise ValueError(f"values without a '# --' description: {', '.join(walker.undocumented)}")
    return walker


def values_schema(values_text: str) -> Schema:
    """The strict JSON schema (draft-07) of ``values.yaml``'s text."""
    schema = _walk(values_text).schema
    schema["properties"]["global"] = {"type": "object", "description": "Values Helm shares with subcharts."}
    return {"$schema": "http://json-schema.org/draft-07/schema#", "title": "llmroute chart values", **schema}


def values_table(values_text: str) -> str:
    """The Markdown values table: key, type, default, description for every leaf, in file order."""
    rows = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    for leaf in _walk(values_text).leaves:
        default = json.dumps(leaf.default, separators=(",", ":")) if leaf.default not in ("", None) else '""'
        description = leaf.description.replace("|", "\\|")
        rows.append(f"| `{leaf.key}` | {leaf.type} | `{default}` | {description} |")
    return "\n".join(rows) + "\n"


def schema_json(values_text: str) -> str:
    return json.dumps(values_schema(values_text), indent=2) + "\n"


def readme_with_table(readme: str, values_text: str) -> str:
    """``readme`` with the text between the ``values:begin``/``values:end`` markers replaced by the table."""
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"the chart README has no {BEGIN} ... {END} markers")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{values_table(values_text)}{END}{tail}"


def generate(chart: Path) -> list[Path]:
    """Write ``values.schema.json`` and the README's table for the chart at ``chart``; return the files."""
    text = (chart / "values.yaml").read_text()
    schema, readme = chart / "values.schema.json", chart / "README.md"
    schema.write_text(schema_json(text))
    readme.write_text(readme_with_table(readme.read_text(), text))
    return [schema, readme]
