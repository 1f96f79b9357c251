"""HTTP/1.1 by hand over a loopback socket, for the requests an HTTP client library will not send
(corrupt encodings, bodies cut short or trickled, pipelining, HTTP/1.0)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    path: str, body: bytes, headers: dict[str, str] | None = None, version: str = "1.1", length: bool = True
) -> bytes:
    """The bytes of a POST of ``body`` (with ``Content-Length`` unless ``length`` is false)."""
    lines = [f"POST {path} HTTP/{version}", "Host: 127.0.0.1"]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One response (its body by ``Content-Length``, else until the connection closes)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body = await reader.read()
    return Answer(int(status_line.split()[1]), headers, body)


async def exchange(port: int, data: bytes, answers: int = 1, within: float = 10.0) -> list[Answer]:
    """Send ``data`` on a new connection and read ``answers`` responses (fails after ``within`` s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(within):
            return [await read_answer(reader) for _ in range(answers)]
    finally:
        writer.close()
