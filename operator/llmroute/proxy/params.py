"""The request fields llmroute itself acts on, checked strictly before anything is charged or sent.

llmroute reads ``model`` (routing), ``stream`` and ``stream_options`` (relay and usage accounting),
``max_tokens`` / ``max_completion_tokens`` and ``n`` (the token estimate the limits charge), and
``temperature`` / ``seed`` (cache eligibility). A wrong type or value in any of them is answered as OpenAI
answers it: ``400 invalid_request_error`` naming the field in ``param``, with OpenAI's codes
(``invalid_type``, ``integer_below_min_value``, ...). Every other field is passed upstream as parsed.

:func:`check` raises :class:`Refused`; it never changes the payload.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from llmroute.proxy import errors
from llmroute.proxy.errors import Refused

MAX_N = 128  # OpenAI's bound on ``n``
MAX_TEMPERATURE = 2.0


class Params(NamedTuple):
    """What llmroute acts on: ``max_output`` is the larger of ``max_completion_tokens`` and ``max_tokens``
    (whichever an upstream honours, the estimate covers it; ``None`` when neither is given),
    ``include_usage`` whether the client asked for usage in its stream."""

    model: str
    stream: bool
    include_usage: bool
    max_output: int | None
    n: int
    temperature: float | None


def invalid(param: str, message: str, code: str) -> Refused:
    """The 400 naming ``param`` with OpenAI's ``code``."""
    return Refused(errors.bad_request(message, param=param, code=code), code)


def wrong_type(param: str, expected: str, value: object) -> Refused:
    """The 400 ``invalid_type`` for ``param``, saying what was ``expected`` and what ``value`` is."""
    got = {bool: "a boolean", str: "a string", int: "an integer", float: "a number"}
    kind = "an array" if isinstance(value, list) else "an object"
    kind = got.get(type(value), kind)
    message = f"Invalid type for '{param}': expected {expected}, but got {kind} instead."
    return invalid(param, message, "invalid_type")


def _integer(payload: dict[str, Any], param: str, low: int, high: int | None = None) -> int | None:
    value = payload.get(param)
    if value is None:
        return None
    if type(value) is not int:
        raise wrong_type(param, "an integer", value)
    if value < low:
        message = f"Invalid '{param}': integer below minimum value. Expected a value >= {low}, got {value}."
        raise invalid(param, message, "integer_below_min_value")
    if high is not None and value > high:
        message = f"Invalid '{param}': integer above maximum value. Expected a value <= {high}, got {value}."
        raise invalid(param, message, "integer_above_max_value")
    return value


def _temperature(payload: dict[str, Any]) -> float | None:
    value = payload.get("temperature")
    if value is None:
        return None
    if type(value) not in (int, float):
        raise wrong_type("temperature", "a decimal", value)
    if not 0.0 <= value <= MAX_TEMPERATURE:
        message = f"Invalid 'temperature': expected a value between 0 and 2, got {value}."
        raise invalid("temperature", message, "decimal_out_of_range")
    return float(value)


def _stream(payload: dict[str, Any]) -> tuple[bool, bool]:
    stream = payload.get("stream")
    if stream is not None and type(stream) is not bool:
        raise wrong_type("stream", "a boolean", stream)
    options = payload.get("stream_options")
    if options is None:
        return stream is True, False
    if type(options) is not dict:
        raise wrong_type("stream_options", "an object", options)
    if stream is not True:
        message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        raise invalid("stream_options", message, "invalid_value")
    include = options.get("include_usage")
    if include is not None and type(include) is not bool:
        raise wrong_type("stream_options.include_usage", "a boolean", include)
    return True, include is True


INTEGERS = (("max_completion_tokens", 1, None), ("max_tokens", 1, None), ("n", 1, MAX_N))


def check(payload: dict[str, Any]) -> Params:
    """The fields of ``payload`` llmroute acts on, validated; raises :class:`Refused` (400) naming the
    first wrong one. ``model`` must be a non-empty string; the others may be absent or ``null``."""
    fast = _well_formed(payload)
    return fast if fast is not None else _checked(payload)


def _well_formed(payload: dict[str, Any]) -> Params | None:
    """The common case in one pass (every field absent or plainly right), or ``None`` to look closer."""
    get = payload.get
    model, stream, options = get("model"), get("stream"), get("stream_options")
    if type(model) is not str or not model or options is not None:
        return None
    if stream is not None and type(stream) is not bool:
        return None
    values: list[int | None] = []
    for name, low, high in INTEGERS:
        value = get(name)
        if value is not None and (
            type(value) is not int or value < low or (high is not None and value > high)
        ):
            return None
        values.append(value)
    temperature, seed = get("temperature"), get("seed")
    if temperature is not None and (type(temperature) not in (int, float) or not 0 <= temperature <= 2):
        return None
    if seed is not None and (type(seed) is not int or not -(2**63) <= seed < 2**63):
        return None
    completion, max_tokens, n = values
    t = float(temperature) if temperature is not None else None
    return Params(model, stream is True, False, _larger(completion, max_tokens), n or 1, t)


def _checked(payload: dict[str, Any]) -> Params:
    """:func:`check`, field by field, raising on the first wrong one."""
    model = payload.get("model")
    if model is None:
        raise invalid("model", "you must provide a model parameter", "missing_required_parameter")
    if type(model) is not str:
        raise wrong_type("model", "a string", model)
    if not model:
        raise invalid("model", "Invalid 'model': empty string.", "empty_string")
    stream, include_usage = _stream(payload)
    completion = _integer(payload, "max_completion_tokens", 1)
    max_tokens = _integer(payload, "max_tokens", 1)
    n = _integer(payload, "n", 1, MAX_N)
    temperature = _temperature(payload)
    _integer(payload, "seed", -(2**63), 2**63 - 1)
    return Params(model, stream, include_usage, _larger(completion, max_tokens), n or 1, temperature)


def _larger(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None or a >= b else b
