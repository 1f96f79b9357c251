"""The input each path requires, checked in its shape before anything is charged or sent upstream.

A request without its input cannot be served by any upstream: sent anyway, it would spend an upstream
call and a request of the caller's rate limit on an error. So llmroute answers it itself, as OpenAI does —
``400 invalid_request_error`` with ``param`` naming the field and OpenAI's codes
(``missing_required_parameter``, ``invalid_type``, ``empty_array``):

- ``/v1/chat/completions``: ``messages``, a non-empty array of objects, each with a string ``role``;
  a message's ``content`` is a string, an array of content parts (objects with a string ``type``) or null;
  a ``tool`` message names its ``tool_call_id``;
- ``/v1/completions``: ``prompt``, a string or an array (of strings, of token ids, of token-id arrays),
  unless the request gives ``prompt_embeds`` instead (vLLM's prompt embedding inputs);
- ``/v1/embeddings``: ``input``, a string or a non-empty array, unless the request gives ``messages``
  instead (vLLM's chat embeddings API).

Only the shape is checked: role names, part types and the rest are the upstream's to judge (self-hosted
engines accept more than OpenAI does). :func:`check_input` raises :class:`Refused`; it never changes the
payload.
"""

from __future__ import annotations

from typing import Any

from llmroute.proxy.errors import Refused
from llmroute.proxy.params import invalid, wrong_type


def check_input(path: str, payload: dict[str, Any]) -> None:
    """Raise :class:`Refused` (400, naming ``param``) if ``payload`` lacks the input ``path`` requires or
    gives it in a shape no upstream accepts."""
    if path == "/v1/chat/completions":
        _messages(payload.get("messages"))
    elif path == "/v1/completions" and "prompt_embeds" not in payload:  # vLLM: embeddings for a prompt
        _prompt(payload.get("prompt"))
    elif path == "/v1/embeddings" and "messages" not in payload:  # vLLM's chat embeddings: no input
        _input(payload.get("input"))


def _messages(messages: object) -> None:
    if type(messages) is list and messages and all(_plain(m) for m in messages):
        return  # the common case at the cost of one pass
    _required("messages", messages)
    if type(messages) is not list:
        raise wrong_type("messages", "an array", messages)
    if not messages:
        raise _empty("messages")
    for i, message in enumerate(messages):
        _message(f"messages[{i}]", message)


def _plain(message: object) -> bool:
    """A message of the common shape: a string role and string content."""
    return (
        type(message) is dict
        and type(message.get("role")) is str
        and type(message.get("content")) is str
        and message["role"] != "tool"
    )


def _message(param: str, message: object) -> None:
    if type(message) is not dict:
        raise wrong_type(param, "an object", message)
    role = message.get("role")
    _required(f"{param}.role", role)
    if type(role) is not str:
        raise wrong_type(f"{param}.role", "a string", role)
    content = message.get("content")
    if type(content) is list:
        for j, part in enumerate(content):
            if type(part) is not dict:
                raise wrong_type(f"{param}.content[{j}]", "an object", part)
            kind = part.get("type")
            _required(f"{param}.content[{j}].type", kind)
            if type(kind) is not str:
                raise wrong_type(f"{param}.content[{j}].type", "a string", kind)
    elif content is not None and type(content) is not str:
        raise wrong_type(f"{param}.content", "a string or an array of content parts", content)
    if role == "tool":
        call_id = message.get("tool_call_id")
        _required(f"{param}.tool_call_id", call_id)
        if type(call_id) is not str:
            raise wrong_type(f"{param}.tool_call_id", "a string", call_id)


def _prompt(prompt: object) -> None:
    if type(prompt) is str:
        return
    _required("prompt", prompt)
    if type(prompt) is not list:
        raise wrong_type("prompt", "a string or an array", prompt)


def _input(value: object) -> None:
    if type(value) is str:
        return
    _required("input", value)
    if type(value) is not list:
        raise wrong_type("input", "a string or an array", value)
    if not value:
        raise _empty("input")


def _required(param: str, value: object) -> None:
    if value is None:
        raise invalid(param, f"Missing required parameter: '{param}'.", "missing_required_parameter")


def _empty(param: str) -> Refused:
    message = (
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, "
        "but got an empty array instead."
    )
    return invalid(param, message, "empty_array")
