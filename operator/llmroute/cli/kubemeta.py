"""Kubernetes' own rules on a manifest outside a CRD's schema, for ``llmroute validate``.

The apiserver checks every object's ``metadata`` itself (apimachinery's ``ValidateObjectMeta``): the
namespace is an RFC 1123 label, label keys and annotation keys are qualified names (an optional DNS
subdomain prefix and ``/``, then a name of at most 63 characters), label values are at most 63
characters of a restricted alphabet, annotations at most 256 KiB in all. kubectl's default strict field
validation refuses unknown fields (``unknown field "metadata.nmespace"``) and duplicate keys in the YAML.
The messages are apimachinery's.

:func:`metadata_problems` and :func:`unknown_fields` yield ``field: message`` strings; :class:`StrictLoader`
is a PyYAML safe loader that refuses a mapping that names the same key twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

TOP_LEVEL = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
OBJECT_META = frozenset(
    {
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
        "ownerReferences", "finalizers", "managedFields",
    }
)  # fmt: skip
MAX_ANNOTATIONS_BYTES = 256 * 1024

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
RFC1123_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name', or '123-abc')"
)
RFC1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com')"
)
NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345')"
)


def unknown_fields(doc: dict[str, Any]) -> Iterator[str]:
    """The top-level and ``metadata`` fields no Kubernetes object has."""
    for key in doc:
        if key not in TOP_LEVEL:
            yield f'{key}: unknown field "{key}"'
    metadata = doc.get("metadata")
    for key in metadata if isinstance(metadata, dict) else ():
        if key not in OBJECT_META:
            yield f'metadata.{key}: unknown field "metadata.{key}"'


def metadata_problems(metadata: dict[str, Any]) -> Iterator[str]:
    """What apimachinery refuses in ``metadata``'s namespace, labels and annotations."""
    namespace = metadata.get("namespace")
    if isinstance(namespace, str):
        if len(namespace) > 63:
            yield "metadata.namespace: must be no more than 63 characters"
        elif not _LABEL.fullmatch(namespace):
            yield f"metadata.namespace: {RFC1123_LABEL}"
    for field in ("labels", "annotations"):
        entries = metadata.get(field)
        for key, value in entries.items() if isinstance(entries, dict) else ():
            for problem in _qualified_name(str(key)):
                yield f"metadata.{field}: {key!r}: {problem}"
            if field == "labels" and isinstance(value, str):
                if len(value) > 63:
                    yield f"metadata.labels: {key!r}: must be no more than 63 characters"
                elif value and not _NAME.fullmatch(value):
                    yield f"metadata.labels: {key!r}: {LABEL_VALUE}"
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
        if size > MAX_ANNOTATIONS_BYTES:
            yield f"metadata.annotations: Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes"


def _qualified_name(key: str) -> Iterator[str]:
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            yield "prefix part must be non-empty"
        elif len(prefix) > 253:
            yield "prefix part must be no more than 253 characters"
        elif not _SUBDOMAIN.fullmatch(prefix):
            yield f"prefix part {RFC1123_SUBDOMAIN}"
    if not name:
        yield "name part must be non-empty"
    elif len(name) > 63:
        yield "name part must be no more than 63 characters"
    elif not _NAME.fullmatch(name):
        yield NAME_PART


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that names a key twice (as kubectl does; PyYAML alone
    keeps the last). Merge keys (``<<``) still merge."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
