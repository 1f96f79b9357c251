"""Request ids: every response carries ``x-request-id``, and the proxy's log lines about a request name it.

The id is the client's own ``x-request-id`` when it sent a sane one (1 to 128 characters of
``A-Za-z0-9`` and ``-_.:=+/``; anything else could forge log lines or blow up headers), else a fresh one:
32 hex digits, a random 64-bit prefix drawn when the process starts and a 64-bit counter (unique across
replicas and restarts without a system call per request; an id is a name, not a secret). It is also sent
upstream, so the three logs can be joined.
"""

from __future__ import annotations

import itertools
import os
import re

from aiohttp import web
from multidict import CIMultiDictProxy

HEADER = "x-request-id"
MAX_LENGTH = 128
_SANE = re.compile(r"[A-Za-z0-9\-_.:=+/]{1,128}")


_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count()


def new_id() -> str:
    """A fresh id: this process's random prefix and the next count, 32 hex digits."""
    return f"{_PREFIX}{next(_COUNTER):016x}"


def valid(value: str) -> bool:
    """Whether a client's id is kept (length and characters as in the module docstring)."""
    return _SANE.fullmatch(value) is not None


def request_id(headers: CIMultiDictProxy[str]) -> str:
    """The id of a request with ``headers``: the client's own when sane, else a fresh one."""
    sent = headers.get(HEADER)
    return sent if sent is not None and valid(sent) else new_id()


def with_request_id(request: web.Request, response: web.Response) -> web.Response:
    """``response`` with the request's id (for answers that log nothing, so any valid id will do)."""
    response.headers[HEADER] = request_id(request.headers)
    return response


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp ``on_response_prepare`` hook: an id on every response that has none yet (the API handler
    puts the one its log lines use on its own answers; the other endpoints log nothing per request)."""
    if HEADER not in response.headers:
        response.headers[HEADER] = request_id(request.headers)
