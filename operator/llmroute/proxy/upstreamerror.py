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
  only the status;
- an error object the upstream sends without an error status — a ``200`` whose body is ``{"error": ...}``,
  or a stream's ``data: {"error": ...}`` event (a failure after the stream began) — is stripped the same
  way and keeps its place (:func:`scrub_error_body`, :func:`scrub_error_events`).

Errors from an upstream that received the client's own key (routes that do not verify keys) are the
client's to read and pass unchanged. The functions are pure.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from llmroute.proxy.errors import JSON, error_body
from llmroute.proxy.tokens import SSE_LINE_END

REFUSED_CREDENTIALS = frozenset({401, 403})
# what a credential or account id looks like in an upstream's error message: OpenAI-style keys (sk-, rk-,
# pk-, Anthropic's sk-ant-), Groq's gsk_, xAI's xai-, Google's AIza…, a Bearer token, OpenAI organisation and
# project ids (org-/org_, proj_/proj-), and any masked token (a run of three or more '*', as upstreams print
# the key they were sent: 'sk-proj-****cdef', 'a1b2********f9e0')
SECRETISH = re.compile(
    r"\b(?:sk|rk|pk)-[A-Za-z0-9_*.\-]{3,}"
    r"|\bgsk_[A-Za-z0-9]{8,}|\bxai-[A-Za-z0-9]{8,}|\bAIza[0-9A-Za-z_\-]{20,}"
    r"|\b[Bb]earer\s+[^\s\"',;]+"
    r"|\borg[-_][A-Za-z0-9]{4,}|\bproj[-_][A-Za-z0-9]{4,}"
    r"|[A-Za-z0-9_\-.]*\*{3,}[A-Za-z0-9_\-.*]*"
)
REDACTED = "[redacted]"


def client_view(status: int, body: bytes, content_type: str, key: str) -> tuple[int, bytes, str]:
    """The status, body and content type to answer the client with for an upstream's error ``status``
    (>= 400) answered to a request llmroute sent with its own ``key``."""
    if status in REFUSED_CREDENTIALS:
        message = (
            f"The upstream refused the gateway's credentials (HTTP {status}); this is not about your key."
        )
        return 502, error_body(message, "server_error", "upstream_error"), JSON
    error = _error_object(body, detail=True) if content_type.startswith(JSON) else None
    if error is None:
        type_ = "server_error" if status >= 500 else "invalid_request_error"
        return status, error_body(f"The upstream answered HTTP {status}.", type_, "upstream_error"), JSON
    return status, orjson.dumps({"error": _scrubbed(error, key, status)}), JSON


def scrub_error_body(status: int, body: bytes, key: str) -> bytes:
    """``body`` of a non-error ``status``, an error object stripped as :func:`client_view` strips one if it
    is ``{"error": {...}}``, else unchanged."""
    if b'"error"' not in body:
        return body
    error = _error_object(body)
    return body if error is None else orjson.dumps({"error": _scrubbed(error, key, status)})


def scrub_error_events(lines: bytes, key: str) -> bytes:
    """Whole SSE ``lines``, each ``data:`` line that carries an error object (``{"error": {...}}``) written
    anew with the object stripped as :func:`client_view` strips one; the other lines unchanged."""
    if b'"error"' not in lines:
        return lines
    parts = SSE_LINE_END.split(lines)  # lines and the ends between them: CRLF, LF or a lone CR
    for i in range(0, len(parts), 2):
        line = parts[i]
        if line.startswith(b"data:") and b'"error"' in line:
            error = _error_object(line[5:])
            if error is not None:
                parts[i] = b"data: " + orjson.dumps({"error": _scrubbed(error, key, 200)})
    return b"".join(parts)


def _scrubbed(error: dict[str, Any], key: str, status: int) -> dict[str, Any]:
    """An OpenAI error object's four fields, stripped of the key and of anything shaped like one."""
    said = error.get("message")
    return {
        "message": redact(said, key) if isinstance(said, str) else f"The upstream answered HTTP {status}.",
        "type": _text(error.get("type"), key),
        "param": _text(error.get("param"), key),
        "code": _text(error.get("code"), key),
    }


def redact(text: str, key: str) -> str:
    """``text`` without ``key`` and without anything shaped like a key or an organisation/project id."""
    if key:
        text = text.replace(key, REDACTED)
    return SECRETISH.sub(REDACTED, text)


def _error_object(body: bytes, *, detail: bool = False) -> dict[str, Any] | None:
    """The error a JSON ``body`` carries, as an OpenAI error object's fields, or ``None``.

    Shapes read: OpenAI's ``{"error": {"message", "type", "param", "code"}}``; vLLM's and SGLang's flat
    ``{"object": "error", "message", "type", "param", "code"}``; ``{"error": "message"}`` (Hugging Face
    TGI, with its ``error_type`` as the type, and Ollama); with ``detail`` (an error status only: a success
    body never counts as one), a web framework's ``{"detail": "message"}`` (FastAPI, Starlette)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        return error
    if isinstance(error, str):
        return {"message": error, "type": data.get("error_type")}
    if data.get("object") == "error" and isinstance(data.get("message"), str):
        return data
    if detail and isinstance(data.get("detail"), str):
        return {"message": data["detail"]}
    return None


def _text(value: object, key: str) -> str | int | None:
    """A ``type``/``param``/``code`` value as OpenAI spells them (a string, null, or an integer code)."""
    if value is None or isinstance(value, int):
        return value
    return redact(value, key) if isinstance(value, str) else None
