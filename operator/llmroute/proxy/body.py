"""Reading a client's request body: bounded in size and in time, and every way it can fail answered
OpenAI-style.

aiohttp hands the handler the body as it arrives, already decoded from its ``Transfer-Encoding``
(chunked) and ``Content-Encoding`` (gzip, deflate; aiohttp decompresses in bounded steps, so the size
bound applies to the decoded body and a small compressed body cannot expand past it). What can go wrong:

- more than ``limit`` bytes (decoded): ``413 request_too_large``, checked against ``Content-Length``
  before reading when the client sent one;
- a body that cannot be decoded (a corrupt gzip or deflate stream, a malformed chunked encoding, a
  connection that ends before ``Content-Length`` bytes came): ``400 invalid_request_body``;
- a client that stops sending: each read waits at most ``idle`` seconds, the whole body at most
  ``total`` seconds, then ``408 request_timeout`` and the connection is closed (a client trickling bytes
  would otherwise hold a request slot for ever).

:func:`read_body` raises :class:`Refused` with the answer; nothing has been charged or sent by then.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from llmroute.proxy import errors
from llmroute.proxy.errors import Refused

BODY_ERRORS = (web.RequestPayloadError, HttpProcessingError)


async def read_body(request: web.Request, limit: int, idle: float, total: float) -> bytes:
    """The body, decoded; raises :class:`Refused`: 413 past ``limit`` bytes, 400 when it cannot be read,
    408 when the client sends nothing for ``idle`` seconds or takes more than ``total`` seconds in all."""
    length = request.content_length
    if length is not None and length > limit:
        raise Refused(errors.too_large(limit), "request_too_large")
    content = request.content
    parts: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total
    try:
        while True:
            if content.is_eof():  # all of it has arrived (the common case): no timer needed
                chunk = await content.readany()
            else:
                left = deadline - loop.time()
                async with asyncio.timeout(max(0.0, min(idle, left))):
                    chunk = await content.readany()
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise Refused(errors.too_large(limit), "request_too_large")
            parts.append(chunk)
    except TimeoutError:
        raise Refused(_timed_out(idle, total), "request_timeout") from None
    except BODY_ERRORS:
        message = "We could not read the body of your request: its encoding is invalid or it was cut short."
        raise Refused(
            errors.bad_request(message, code="invalid_request_body"), "invalid_request_body"
        ) from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _timed_out(idle: float, total: float) -> web.Response:
    message = (
        f"The request body did not arrive in time (nothing for {idle:g} s, or more than {total:g} s in all)."
    )
    response = errors.error(408, message, "invalid_request_error", "request_timeout")
    response.force_close()  # the rest of the body is still on the way: this connection cannot be reused
    return response
