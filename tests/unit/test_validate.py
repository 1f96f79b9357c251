"""`llmroute validate` never crashes and never says "valid" to what the apiserver refuses: every problem is
one line naming the file, the document and the field, and the exit code is 1. The invalid routes are the
shared case table the apiserver tier (tests/cluster/test_crd.py) runs too."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmroute.cli.main import main
from tests.cases import INVALID, VALID_EDGES, Invalid, edge_route, invalid_route, route

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))


def validate(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, list[str], list[str]]:
    code = main(["validate", *map(str, paths)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


MALFORMED = [
    # (file content, what the one line says)
    pytest.param(
        b"- a\n- b\n", "document 0: must be an object (a Kubernetes manifest), not a list", id="top-list"
    ),
    pytest.param(
        b"42\n", "document 0: must be an object (a Kubernetes manifest), not a number", id="top-scalar"
    ),
    pytest.param(
        b"just words\n", "document 0: must be an object (a Kubernetes manifest), not a string", id="top-str"
    ),
    pytest.param(
        b"apiVersion: llmroute.io/v1alpha1\nkind: LLMRoute\nmetadata: null\nspec: {}\n",
        "document 0 (LLMRoute): metadata: must be an object with a name, not null",
        id="metadata-null",
    ),
    pytest.param(
        b"apiVersion: llmroute.io/v1alpha1\nkind: LLMRoute\nmetadata: [x]\nspec: {}\n",
        "metadata: must be an object with a name, not a list",
        id="metadata-list",
    ),
    pytest.param(
        b"apiVersion: llmroute.io/v1alpha1\nkind: LLMRoute\nmetadata: {name: r}\nspec: null\n",
        "document 0 (LLMRoute r): spec: Required value",
        id="spec-null",
    ),
    pytest.param(
        b"apiVersion: llmroute.io/v1alpha1\nkind: LLMRoute\nmetadata: {}\nspec: {upstreams: []}\n",
        "metadata.name: Field required",
        id="no-name",
    ),
    pytest.param(
        b"apiVersion: llmroute.io/v1\nkind: LLMRoute\nmetadata: {name: r}\nspec: {}\n",
        "apiVersion: must be llmroute.io/v1alpha1, not 'llmroute.io/v1'",
        id="wrong-version",
    ),
    pytest.param(b"spec: [\n", "YAML syntax error at line 2, column 1", id="yaml-syntax"),
    pytest.param(b"a: 1\n\tb: 2\n", "YAML syntax error", id="yaml-tab"),
    pytest.param(b"kind: LLMRoute\nspec: \xff\xfe\n", "not UTF-8 text (byte 21", id="not-utf8"),
    pytest.param(
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "no LLMRoute in the file", id="none"
    ),
    pytest.param(b"", "no LLMRoute in the file", id="empty"),
]


@pytest.mark.parametrize(("content", "says"), MALFORMED)
def test_malformed_files_are_one_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, says: str
) -> None:
    path = tmp_path / "route.yaml"
    path.write_bytes(content)
    code, out, err = validate(capsys, path)
    assert code == 1 and out == []
    assert any(line.startswith(f"{path}: ") and says in line for line in err), err
    assert not any("Traceback" in line for line in err)


def test_a_missing_file_is_a_problem_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = validate(capsys, tmp_path / "absent.yaml")
    assert code == 1 and err == [
        f"{tmp_path / 'absent.yaml'}: cannot read the file: No such file or directory"
    ]


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c.id)
def test_every_case_the_apiserver_refuses_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: Invalid
) -> None:
    path = tmp_path / "route.yaml"
    path.write_text(yaml.safe_dump(invalid_route(case)))
    code, out, err = validate(capsys, path)
    assert code == 1 and out == []
    text = "\n".join(err)
    assert all(line.startswith(f"{path}: document 0 (LLMRoute ") for line in err)
    assert case.model_message in text or case.model_message in text.replace("[", ".").replace("]", ""), text
    if case.field is not None:  # the same field the apiserver names
        assert f": {case.field}: " in text, text


@pytest.mark.parametrize("case_id", sorted(VALID_EDGES))
def test_edges_of_the_rules_are_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case_id: str
) -> None:
    path = tmp_path / "route.yaml"
    path.write_text(yaml.safe_dump(edge_route(case_id)))
    code, out, err = validate(capsys, path)
    assert (code, err) == (0, []) and out[0].endswith(": valid")


def test_examples_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(capsys, *EXAMPLES)
    assert (code, err) == (0, []) and len(out) == len(EXAMPLES)


def test_each_document_of_a_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = route("good"), route("bad", proxy={"minReplicas": 5, "maxReplicas": 2})
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all([good, config, None, bad]))
    code, out, err = validate(capsys, path)
    assert code == 1
    assert out == [f"{path}: document 0 (LLMRoute good): valid"]
    assert err == [
        f"{path}: document 3 (LLMRoute bad): spec.proxy: proxy.minReplicas must not exceed proxy.maxReplicas"
    ]


def test_the_items_of_a_list_are_checked_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``kubectl get llmr -o yaml`` writes a ``kind: List``; its LLMRoutes are checked one by one."""
    good, bad = route("good"), route("bad", proxy={"minReplicas": 5, "maxReplicas": 2})
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [good, bad]}))
    code, out, err = validate(capsys, path)
    assert code == 1
    assert out == [f"{path}: document 0 item 0 (LLMRoute good): valid"]
    assert err == [
        f"{path}: document 0 item 1 (LLMRoute bad): spec.proxy: proxy.minReplicas must not exceed "
        "proxy.maxReplicas"
    ]
    empty = tmp_path / "empty.yaml"
    empty.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": []}))
    code, _, err = validate(capsys, empty)
    assert code == 1 and "no LLMRoute" in err[0]


def _with(doc: dict[str, object], **top: object) -> bytes:
    return yaml.safe_dump({**doc, **top}).encode()


GOOD_ROUTE = route("r")
REFUSED_BY_KUBECTL = [
    # (file content, what the one line says): what kubectl and the apiserver refuse outside the CRD's schema
    pytest.param(
        b"apiVersion: llmroute.io/v1alpha1\nkind: LLMRoute\nmetadata: {name: r}\nmetadata: {name: s}\n"
        + yaml.safe_dump({"spec": GOOD_ROUTE["spec"]}).encode(),
        "YAML syntax error at line 4, column 1: duplicate key 'metadata'",
        id="duplicate-top-level-key",
    ),
    pytest.param(
        _with(GOOD_ROUTE).replace(b"name: r\n", b"name: r\n  name: s\n", 1),
        "duplicate key 'name'",
        id="duplicate-nested-key",
    ),
    pytest.param(
        _with(GOOD_ROUTE, metadata={"name": "r", "namespace": "Team_A"}),
        "metadata.namespace: a lowercase RFC 1123 label",
        id="namespace-not-a-label",
    ),
    pytest.param(
        _with(GOOD_ROUTE, metadata={"name": "r", "namespace": "n" * 64}),
        "metadata.namespace: must be no more than 63 characters",
        id="namespace-too-long",
    ),
    pytest.param(
        _with(GOOD_ROUTE, metadata={"name": "r", "labels": {"bad key!": "v"}}),
        "metadata.labels: 'bad key!': name part must consist of alphanumeric characters",
        id="label-key",
    ),
    pytest.param(
        _with(GOOD_ROUTE, metadata={"name": "r", "labels": {"team": "x" * 64}}),
        "metadata.labels: 'team': must be no more than 63 characters",
        id="label-value-too-long",
    ),
    pytest.param(
        _with(GOOD_ROUTE, metadata={"name": "r", "labels": {"team": "a b"}}),
        "metadata.labels: 'team': a valid label must be an empty string or consist of alphanumeric",
        id="label-value-characters",
    ),
    pytest.param(
        _with(GOOD_ROUTE, metadata={"name": "r", "annotations": {"Example.com/x": "v"}}),
        "metadata.annotations: 'Example.com/x': prefix part a lowercase RFC 1123 subdomain",
        id="annotation-key-prefix",
    ),
    pytest.param(
        _with(GOOD_ROUTE, metadata={"name": "r", "annotations": {"a": 1}}),
        "metadata.annotations.a: Input should be a valid string",
        id="annotation-value-not-a-string",
    ),
    pytest.param(
        _with(GOOD_ROUTE, metadata={"name": "r", "nmespace": "x"}),
        'unknown field "metadata.nmespace"',
        id="unknown-metadata-field",
    ),
    pytest.param(_with(GOOD_ROUTE, sepc={}), 'unknown field "sepc"', id="unknown-top-level-field"),
]


@pytest.mark.parametrize(("content", "says"), REFUSED_BY_KUBECTL)
def test_what_kubectl_refuses_outside_the_schema_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, says: str
) -> None:
    path = tmp_path / "route.yaml"
    path.write_bytes(content)
    code, out, err = validate(capsys, path)
    assert code == 1 and out == []
    assert len(err) == 1 and err[0].startswith(f"{path}: ") and says in err[0], err


def test_metadata_kubernetes_accepts_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metadata = {
        "name": "r",
        "namespace": "team-a",
        "labels": {"app.kubernetes.io/part-of": "chat", "empty": "", "x" * 63: "v" * 63},
        "annotations": {"example.com/note": "any text at all: spaces, ünïcode"},
        "uid": "u",
        "resourceVersion": "1",
        "generation": 1,
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "finalizers": ["example.com/f"],
        "managedFields": [],
    }
    path = tmp_path / "route.yaml"
    path.write_bytes(_with(GOOD_ROUTE, metadata=metadata, status={}))
    code, _, err = validate(capsys, path)
    assert (code, err) == (0, [])
