"""What a client sees of an upstream's error answer when llmroute sent the upstream its own key.

The upstream's error then speaks of llmroute's account, not of the client: OpenAI answers a wrong key with
``Incorrect API key provided: sk-abcd****wxyz`` (a part of the organisation's key) and a rate limit with
``... in organization org-... on tokens per min (TPM): Limit ..., Used ...``. So, for an upstream llmroute
authenticated to itself:

- ``401`` and ``403`` (the upstream refused llmroute's credentials or account) become ``502
  upstream_error``: the client's own key was fine, and an SDK would otherwise tell its user to fix it;
- any other error keeps its status, ``type``, ``param`` and ``code`` (a ``400`` naming the parameter is the
  client's to act on), with the message stripped of the key itself and anything shaped like a key or an
  organisation or project id;
- a body that is not an OpenAI error object (an HTML page from a load balancer, say) becomes one that says
  only the status.

Errors from an upstream that received the client's own key (routes that do not verify keys) are the
client's to read and pass unchanged. :func:`client_view` is pure.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from llmroute.proxy.errors import JSON, error_body

REFUSED_CREDENTIALS = frozenset({401, 403})
# key-shaped tokens (OpenAI sk-/rk-, Anthropic sk-ant-, masked or not) and OpenAI organisation / project ids
SECRETISH = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_*.\-]{3,}|\borg-[A-Za-z0-9]{4,}|\bproj_[A-Za-z0-9]{4,}")
REDACTED = "[redacted]"


def client_view(status: int, body: bytes, content_type: str, key: str) -> tuple[int, bytes, str]:
    """The status, body and content type to answer the client with for an upstream's error ``status``
    (>= 400) answered to a request llmroute sent with its own ``key``."""
    if status in REFUSED_CREDENTIALS:
        message = (
            f"The upstream refused the gateway's credentials (HTTP {status}); this is not about your key."
        )
        return 502, error_body(message, "server_error", "upstream_error"), JSON
    error = _error_object(body) if content_type.startswith(JSON) else None
    if error is None:
        type_ = "server_error" if status >= 500 else "invalid_request_error"
        return status, error_body(f"The upstream answered HTTP {status}.", type_, "upstream_error"), JSON
    said = error.get("message")
    message = redact(said, key) if isinstance(said, str) else f"The upstream answered HTTP {status}."
    scrubbed = {
        "message": message,
        "type": _text(error.get("type"), key),
        "param": _text(error.get("param"), key),
        "code": _text(error.get("code"), key),
    }
    return status, orjson.dumps({"error": scrubbed}), JSON


def redact(text: str, key: str) -> str:
    """``text`` without ``key`` and without anything shaped like a key or an organisation/project id."""
    if key:
        text = text.replace(key, REDACTED)
    return SECRETISH.sub(REDACTED, text)


def _error_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else None


def _text(value: object, key: str) -> str | int | None:
    """A ``type``/``param``/``code`` value as OpenAI spells them (a string, null, or an integer code)."""
    if value is None or isinstance(value, int):
        return value
    return redact(value, key) if isinstance(value, str) else None
