"""Property tests: generated LLMRoute manifests (the shipped examples with one or a few fields mutated)
either validate, or are refused with pydantic's ``ValidationError`` whose every line names the field as the
apiserver does (``spec.upstreams[0].weight``); and a route that validates can be rendered and decided on
without an exception (the operator takes every route the models accept)."""

from __future__ import annotations

import copy
import math
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from llmroute.cli.render import steady_config
from llmroute.cli.routefile import error_lines, field_path
from llmroute.cli.validate import check_file, problems
from llmroute.decide import Observed, decide
from llmroute.render import build_children
from llmroute.spec import LLMRoute
from llmroute.spec.status import LLMRouteStatus

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))
BASES = [doc for path in EXAMPLES for doc in yaml.safe_load_all(path.read_text()) if doc]
SETTINGS = settings(max_examples=400)  # the rest: the llmroute profile (tests/unit/conftest.py)

Path_ = tuple[str | int, ...]


def leaves(obj: Any, at: Path_ = ()) -> list[Path_]:
    """Every path in ``obj`` (objects and lists included), the root excluded."""
    out: list[Path_] = [at] if at else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += leaves(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += leaves(v, (*at, i))
    return out


def get(obj: Any, at: Path_) -> Any:
    for part in at:
        obj = obj[part]
    return obj


ODD = st.one_of(
    st.sampled_from(
        [
            None,
            0,
            -1,
            1,
            2**31,
            2**63,
            2**64 + 1,
            10**30,
            0.0,
            -0.0,
            0.5,
            1e-300,
            1e308,
            math.nan,
            math.inf,
            -math.inf,
            "",
            " ",
            "0",
            "1",
            "true",
            "NaN",
            "Infinity",
            "1e400",
            "ü\u200b",
            "a" * 300,
            "\x00",
            True,
            False,
            [],
            {},
            [None],
            {"": None},
        ]
    ),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """An example route with one to three changes: a value replaced, a key removed, an unknown key added,
    or a list item repeated (a duplicated name)."""
    doc: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in leaves(doc) if p[0] == "spec" or p[:2] == ("metadata", "name")]
        if not paths:
            break
        at = draw(st.sampled_from(paths))
        parent = get(doc, at[:-1])
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "extra", "repeat"]))
        if op == "replace":
            parent[at[-1]] = copy.deepcopy(draw(ODD))  # the sampled [] and {} are shared
        elif op == "delete":
            del parent[at[-1]]
        elif op == "extra" and isinstance(get(doc, at), dict):
            key = draw(st.sampled_from(["unknownField", "weight", "", "ümlaut"]))
            get(doc, at)[key] = copy.deepcopy(draw(ODD))
        elif op == "repeat" and isinstance(parent, list):
            parent.append(copy.deepcopy(get(doc, at)))
    return doc


NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def operate(route: LLMRoute) -> None:
    """What the operator and ``llmroute render`` do with a valid route, once, at a fixed time."""
    replicas = max(1, route.spec.proxy.min_replicas)
    config = steady_config(route, replicas, NOW)
    config.dumps()
    build_children(route, config, replicas)
    minutes = 30
    obs = Observed(
        now=NOW,
        metrics=None,
        metrics_error=None,
        history_start=NOW.timestamp() - minutes * 60,
        history=np.full(minutes, 5.0),
        history_step=60,
        scale=None,
        conflicts=[],
        previous=LLMRouteStatus(),
    )
    decide(route, obs)


@SETTINGS
@given(mutated())
def test_a_mutated_route_validates_or_names_each_bad_field(doc: dict[str, Any]) -> None:
    try:
        route = LLMRoute.from_object(doc)
    except ValidationError as exc:
        lines = error_lines(exc)
        assert len(lines) == len(exc.errors()) > 0
        for line, err in zip(lines, exc.errors(), strict=True):
            assert err["loc"] and err["loc"][0] in {"metadata", "spec", "apiVersion", "kind"}, line
            assert line.startswith(field_path(tuple(err["loc"])) + ": "), line
            assert "Traceback" not in line
    else:
        operate(route)
    for line in problems(doc):  # what `llmroute validate` prints: never a traceback
        assert isinstance(line, str) and line


@SETTINGS
@given(mutated())
def test_a_valid_route_survives_its_own_wire_form(doc: dict[str, Any]) -> None:
    """What the operator writes back (``to_wire``) is read again as the same route."""
    try:
        route = LLMRoute.from_object(doc)
    except ValidationError:
        return
    again = LLMRoute.from_object(route.to_wire())
    assert again == route


def typed_leaves(doc: dict[str, Any]) -> list[Path_]:
    """The paths of the spec's numbers and booleans."""
    return [p for p in leaves(doc) if p[0] == "spec" and isinstance(get(doc, p), int | float | bool)]


@SETTINGS
@given(
    st.sampled_from([b for b in BASES if typed_leaves(b)]).flatmap(
        lambda d: st.tuples(st.just(d), st.sampled_from(typed_leaves(d)))
    )
)
def test_a_number_or_boolean_spelled_as_a_string_is_refused_at_its_path(
    case: tuple[dict[str, Any], Path_],
) -> None:
    """As the apiserver's schema: ``"5"`` is not an integer nor ``"true"`` a boolean (pydantic's lax mode
    reads them as such); and ``5.0`` is an integer, as the apiserver's JSON decoder reads it."""
    base, at = case
    value = get(base, at)
    doc = copy.deepcopy(base)
    get(doc, at[:-1])[at[-1]] = str(value).lower()
    try:
        LLMRoute.from_object(doc)
    except ValidationError as exc:
        assert field_path(at) in [field_path(tuple(e["loc"])) for e in exc.errors()], error_lines(exc)
    else:
        raise AssertionError(f"{field_path(at)}: {str(value).lower()!r} was accepted")
    if isinstance(value, int) and not isinstance(value, bool):
        get(doc, at[:-1])[at[-1]] = float(value)
        assert LLMRoute.from_object(doc) == LLMRoute.from_object(base)


YAML_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10), st.binary(max_size=5)
)
YAML_VALUES = st.recursive(
    YAML_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.booleans()), inner, max_size=3)
    ),
    max_leaves=15,
)


@st.composite
def route_files(draw: st.DrawFn) -> bytes:
    """A YAML file: generated LLMRoute-looking documents (any metadata and spec), a ``kind: List`` of them,
    or generated text."""
    doc: dict[Any, Any] = {
        "apiVersion": draw(st.sampled_from(["llmroute.io/v1alpha1", "v1"]) | YAML_VALUES),
        "kind": "LLMRoute",
        "metadata": draw(st.fixed_dictionaries({"name": st.just("r")}) | YAML_VALUES),
        "spec": draw(st.just(copy.deepcopy(BASES[1]["spec"])) | YAML_VALUES),
    }
    doc.update(draw(st.dictionaries(st.text(max_size=5), YAML_VALUES, max_size=2)))
    shape = draw(st.sampled_from(["doc", "list", "text"]))
    if shape == "text":
        return draw(st.text(max_size=200)).encode()
    body = {"apiVersion": "v1", "kind": "List", "items": [doc, draw(YAML_VALUES)]} if shape == "list" else doc
    return yaml.safe_dump_all([body, draw(YAML_VALUES)], allow_unicode=True).encode()


@settings(max_examples=150)
@given(route_files())
def test_validate_reports_any_file_as_lines_never_a_traceback(content: bytes) -> None:
    """``llmroute validate`` on a generated file: problem lines naming the file, or routes found valid."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.yaml"
        path.write_bytes(content)
        found, valid = check_file(path)
    assert found or valid
    for line in [*found, *valid]:
        assert isinstance(line, str) and line.startswith(str(path)), line
