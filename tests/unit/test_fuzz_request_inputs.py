"""Property tests of the proxy's request checks with generated JSON bodies for the three API paths: a body
is accepted, or answered ``400 invalid_request_error`` with OpenAI's ``code`` and a ``param`` naming the
field at fault; no other exception escapes; the one-pass fast checks agree with the field-by-field ones;
an accepted body can be sent upstream and charges a bounded, positive token estimate."""

from __future__ import annotations

import re
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from llmroute.proxy import params as params_module
from llmroute.proxy.errors import Refused
from llmroute.proxy.handler import outgoing
from llmroute.proxy.inputs import check_input
from llmroute.proxy.params import MAX_N, check
from llmroute.proxy.tokens import MAX_ESTIMATE, estimate

SETTINGS = settings(max_examples=300)  # the rest: the llmroute profile (tests/unit/conftest.py)
PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
PARAM = re.compile(r"^[a-z_]+(\[\d+\])*(\.[a-z_]+(\[\d+\])*)*$")

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, 1, 2, 128, 129, -1, 2**63 - 1, 2**63, -(2**63), 0.0, 1.5, 2.0, 2.0000001, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["", "m", "user", "tool", "system", "text"]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": st.text(max_size=5)}),
    st.fixed_dictionaries(
        {"role": st.just("tool"), "content": st.text(max_size=5)},
        optional={"tool_call_id": JSON},
    ),
    st.fixed_dictionaries(
        {"role": st.just("user"), "content": st.lists(st.fixed_dictionaries({"type": JSON}), max_size=2)}
    ),
    st.fixed_dictionaries({}, optional={"role": JSON, "content": JSON, "tool_call_id": JSON}),
    JSON,
)
FIELDS = {
    "model": st.sampled_from(["m", ""]) | JSON,
    "messages": st.lists(MESSAGE, max_size=3) | JSON,
    "prompt": st.text(max_size=5) | st.lists(st.integers(0, 10), max_size=3) | JSON,
    "input": st.text(max_size=5) | st.lists(st.text(max_size=3), max_size=3) | JSON,
    "stream": st.booleans() | JSON,
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans() | JSON}) | JSON,
    "max_tokens": st.integers(-2, 2**64) | JSON,
    "max_completion_tokens": st.integers(-2, 2**64) | JSON,
    "n": st.integers(-1, MAX_N + 1) | JSON,
    "temperature": st.floats(-1, 3, allow_nan=False) | JSON,
    "seed": st.integers(-(2**64), 2**64) | JSON,
    "prompt_embeds": JSON,
}


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A path and a body as orjson parses it: a valid request for the path with some fields generated."""
    path = draw(st.sampled_from(PATHS))
    inputs: dict[str, dict[str, Any]] = {
        "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}]},
        "/v1/completions": {"prompt": "hi"},
        "/v1/embeddings": {"input": "hi"},
    }
    body: dict[str, Any] = {"model": "m", **inputs[path]}
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=4, unique=True)):
        if draw(st.integers(0, 5)) == 0:
            body.pop(name, None)
        else:
            body[name] = draw(FIELDS[name])
    try:  # only what a client can send: orjson refuses integers beyond 64 bits
        return path, orjson.loads(orjson.dumps(body))
    except orjson.JSONEncodeError:
        body = {k: v for k, v in body.items() if _fits(v)}
        return path, orjson.loads(orjson.dumps(body))


def _fits(value: object) -> bool:
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


def head(param: str) -> str:
    return re.split(r"[.\[]", param, maxsplit=1)[0]


def refusal(exc: Refused) -> dict[str, Any]:
    """The OpenAI error object of ``exc``'s response, checked for its shape."""
    assert exc.response.status == 400
    assert exc.response.content_type == "application/json"
    assert isinstance(exc.response.body, bytes)
    error = orjson.loads(exc.response.body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["code"], str) and error["code"] == exc.error
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


@SETTINGS
@given(bodies())
def test_a_body_is_accepted_or_refused_naming_its_param(request_: tuple[str, dict[str, Any]]) -> None:
    path, payload = request_
    before = orjson.dumps(payload)
    try:
        params = check(payload)
        check_input(path, payload)
    except Refused as exc:
        error = refusal(exc)
        param = error["param"]
        assert isinstance(param, str) and PARAM.match(param), error
        assert head(param) in payload or error["code"] == "missing_required_parameter", error
        if error["code"] == "missing_required_parameter":
            assert param.rsplit(".", 1)[-1] in error["message"], error
        return
    finally:
        assert orjson.dumps(payload) == before  # the checks never change the payload
    assert params.model == payload["model"] and params.model
    assert 1 <= params.n <= MAX_N
    assert params.max_output is None or params.max_output >= 1
    assert params.temperature is None or 0 <= params.temperature <= 2
    sent, raw, _ = outgoing(payload, params)
    assert orjson.loads(raw) == sent
    charge = estimate(path, len(before), params)
    assert 1 <= charge <= MAX_ESTIMATE


@SETTINGS
@given(bodies())
def test_the_fast_check_agrees_with_the_field_by_field_one(request_: tuple[str, dict[str, Any]]) -> None:
    """``check`` takes a one-pass path for common bodies; it must decide exactly as the full checks."""
    _, payload = request_
    try:
        slow: object = params_module._checked(payload)
    except Refused as exc:
        slow = orjson.loads(exc.response.body)  # type: ignore[arg-type]
    try:
        fast: object = check(payload)
    except Refused as exc:
        fast = orjson.loads(exc.response.body)  # type: ignore[arg-type]
    assert fast == slow
