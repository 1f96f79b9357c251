"""Request ids: every response carries ``x-request-id``, and the proxy's log lines about a request name it.

The id is the client's own ``x-request-id`` when it sent a sane one (1 to 128 characters of
``A-Za-z0-9`` and ``-_.:=+/``; anything else could forge log lines or blow up headers), else a fresh
random one (32 hex digits). It is also sent upstream, so the three logs can be joined.
"""

from __future__ import annotations

import os
import re

from aiohttp import web

HEADER = "x-request-id"
KEY = web.RequestKey("llmroute_request_id", str)  # where the id is kept on the aiohttp request
MAX_LENGTH = 128
_SANE = re.compile(r"[A-Za-z0-9\-_.:=+/]{1,128}")


def new_id() -> str:
    """A fresh id: 128 random bits as 32 hex digits."""
    return os.urandom(16).hex()


def valid(value: str) -> bool:
    """Whether a client's id is kept (length and characters as in the module docstring)."""
    return _SANE.fullmatch(value) is not None


def request_id(request: web.Request) -> str:
    """The id of ``request``: decided on first use, the same afterwards."""
    rid = request.get(KEY)
    if rid is None:
        sent = request.headers.get(HEADER)
        rid = sent if sent is not None and valid(sent) else new_id()
        request[KEY] = rid
    return rid


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp ``on_response_prepare`` hook: put the request's id on every response."""
    response.headers[HEADER] = request_id(request)
