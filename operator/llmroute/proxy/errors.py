"""OpenAI-format error responses: ``{"error": {"message", "type", "param", "code"}}``.

A step of the request path that ends the request early raises :class:`Refused` with the answer to send.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

JSON = "application/json"


class Refused(Exception):
    """Ends a request early with ``response`` (an OpenAI-format error); the handler sends it. ``error``
    names the ending for the request's outcome (the OpenAI error code, e.g. ``rate_limit_exceeded``)."""

    def __init__(self, response: web.Response, error: str) -> None:
        super().__init__(response.status)
        self.response = response
        self.error = error


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def error(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    response = web.Response(status=status, body=error_body(message, type_, code, param), content_type=JSON)
    if headers:
        response.headers.update(headers)
    return response


def bad_request(message: str, param: str | None = None, code: str | None = None) -> web.Response:
    return error(400, message, "invalid_request_error", code, param)


def unauthorized(message: str) -> web.Response:
    return error(401, message, "invalid_request_error", "invalid_api_key")


def not_found(message: str, code: str = "not_found") -> web.Response:
    return error(404, message, "invalid_request_error", code)


def method_not_allowed(message: str, allowed: list[str]) -> web.Response:
    """The 405 for a known path asked with another method; ``Allow`` lists the methods it takes."""
    headers = {"Allow": ", ".join(allowed)}
    return error(405, message, "invalid_request_error", "method_not_allowed", headers=headers)


def too_large(limit: int) -> web.Response:
    return error(413, f"request body exceeds {limit} bytes", "invalid_request_error", "request_too_large")


def overloaded(message: str, retry_after: float = 1.0) -> web.Response:
    seconds = max(1, round(retry_after))
    return error(503, message, "server_error", "overloaded", headers={"Retry-After": str(seconds)})


def bad_gateway(status: int, message: str) -> web.Response:
    return error(status, message, "server_error", "upstream_error")
