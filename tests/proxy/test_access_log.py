"""The access log end to end: a real proxy on loopback, the fake upstream, and the official ``openai`` SDK as
clients (a heavy client, regulars and occasionals in two tiers, streaming and not): one line per request
with the contract's fields and no key or prompt, and ``llmroute report`` on that log finds the heavy
client and the segment shares counted by hand. Also the writer on its own: it never blocks its caller
and counts what it could not write."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import os
import threading
from pathlib import Path
from typing import Any

import openai
import pytest

from llmroute.cli.main import main
from llmroute.proxy.accesslog import AccessLogWriter
from llmroute.spec.accesslog import FIELDS
from llmroute.testing.fake_upstream import FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, tier, upstream

HASH_KEY = "hmac-key-material-7f3a"
HEAVY = "sk-heavy-0001"
REGULARS = ["sk-reg-a", "sk-reg-b", "sk-reg-c"]
OCCASIONALS = ["sk-occ-1", "sk-occ-2", "sk-occ-3", "sk-occ-4"]
PROMPT = "SECRET-PROMPT-do-not-log"


def client_id(key: str) -> str:
    """The pseudonymous id, computed independently of the proxy (RFC 2104 HMAC over the key's sha256)."""
    digest = hashlib.sha256(key.encode()).digest()
    return hmac.new(HASH_KEY.encode(), digest, hashlib.sha256).hexdigest()[:16]


async def start(harness: Harness, fake: FakeUpstream, log: Path) -> None:
    (harness.dir / "premium").write_text("\n".join([HEAVY, *REGULARS[:2]]) + "\n")
    (harness.dir / "basic").write_text("\n".join([REGULARS[2], *OCCASIONALS]) + "\n")
    (harness.dir / "hash-key").write_text(HASH_KEY + "\n")
    tiers = [
        tier("premium", apiKeysFile=str(harness.dir / "premium"), priority=10),
        tier("basic", apiKeysFile=str(harness.dir / "basic")),
    ]
    access = {"enabled": True, "sampleRate": 1.0, "hashKeyFile": str(harness.dir / "hash-key")}
    cfg = config(upstream(fake.url, model="gpt-4o-mini"), limits={"tiers": tiers}, accessLog=access)
    harness.access_log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    await harness.start(cfg)


async def send(base: str, key: str, count: int, stream_every: int) -> int:
    client = openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0, timeout=10)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
    for i in range(count):
        if stream_every and i % stream_every == 0:
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
            async for _ in stream:
                pass
        else:
            await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    await client.close()
    return count


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_one_line_per_request_and_the_report_on_it(
    harness: Harness, fake: FakeUpstream, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "access.log"
    await start(harness, fake, log)
    base = harness.url + "/v1"
    plan = (
        [(HEAVY, 60, 3)]
        + [(k, 12, 4) for k in REGULARS]
        + [(k, 1 + i % 2, 0) for i, k in enumerate(OCCASIONALS)]
    )
    sent = sum(await asyncio.gather(*(send(base, key, n, every) for key, n, every in plan)))
    wrong = openai.AsyncOpenAI(base_url=base, api_key="sk-wrong-key", max_retries=0, timeout=10)
    with pytest.raises(openai.AuthenticationError):
        await wrong.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}]
        )
    await wrong.close()
    occasional = openai.AsyncOpenAI(base_url=base, api_key=OCCASIONALS[0], max_retries=0, timeout=10)
    with pytest.raises(openai.NotFoundError):
        await occasional.chat.completions.create(model="nope", messages=[{"role": "user", "content": PROMPT}])
    await occasional.close()
    sent += 2
    await harness.stop()  # flushes the writer
    os.close(harness.access_log_fd)

    text = log.read_text()
    for secret in (HEAVY, *REGULARS, *OCCASIONALS, "sk-wrong-key", HASH_KEY, PROMPT, "okokok"):
        assert secret not in text
    lines = read_log(log)
    assert len(lines) == sent == fake.stats.received + 2
    assert all(set(line) == set(FIELDS) and line["v"] == 1 for line in lines)
    by_client: dict[Any, list[dict[str, Any]]] = {}
    for line in lines:
        by_client.setdefault(line["client"], []).append(line)
    assert len(by_client[client_id(HEAVY)]) == 60
    assert {len(by_client[client_id(k)]) for k in REGULARS} == {12}
    assert by_client[None][0]["status"] == 401 and by_client[None][0]["error_type"] == "invalid_api_key"
    missing = [x for x in by_client[client_id(OCCASIONALS[0])] if x["status"] == 404]
    assert missing[0]["error_type"] == "model_not_found" and missing[0]["tier"] == "basic"
    heavy = by_client[client_id(HEAVY)]
    assert {x["tier"] for x in heavy} == {"premium"} and sum(x["stream"] for x in heavy) == 20
    ok = [x for x in lines if x["status"] == 200]
    assert all(x["upstream"] == "a" and x["retries"] == 0 and x["route"] == "ns/r" for x in ok)
    assert all(x["endpoint"] == "/v1/chat/completions" and x["model"] == "gpt-4o-mini" for x in ok)
    assert all(x["output_tokens"] == 3 and x["input_tokens"] > 0 for x in ok if not x["stream"])
    assert all(x["latency_ms"] >= x["ttfb_ms"] > 0 and x["request_bytes"] > 0 for x in ok)
    assert len({x["request_id"] for x in lines}) == len(lines)

    assert main(["report", "--access-log", str(log), "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    clients = report["clients"]
    assert clients["top_clients"][0]["client"] == client_id(HEAVY)
    assert clients["top_clients"][0]["segment"] == "heavy"
    total = 60 + 36 + 6 + 2  # 1+2+1+2 occasional requests, the 404 and the anonymous 401
    segments = clients["segments"]
    assert segments["heavy"]["clients"] == 1 and segments["heavy"]["requests_share"] == pytest.approx(
        60 / total
    )
    assert segments["regular"]["clients"] == 3 and segments["regular"]["requests_share"] == pytest.approx(
        36 / total
    )
    assert segments["occasional"]["clients"] == 4
    assert segments["occasional"]["requests_share"] == pytest.approx(7 / total)
    assert segments["occasional"]["error_rate"] == 0  # a 404 is the client's error, not the gateway's
    assert clients["without_client_id"]["requests"] == 1
    assert report["breakdowns"]["tier"]["premium"]["requests"] == 60 + 24


def test_writer_never_blocks_and_counts_what_it_drops() -> None:
    read_end, write_end = os.pipe()  # nobody reads yet: the pipe fills after about 64 KiB
    writer = AccessLogWriter(write_end, flush_seconds=0.01, max_pending_lines=200)
    writer.configure(True, 1.0, b"k")
    entry = (1740960000.5, "x" * 128, "ns/r", "team", None, "/v1/chat/completions", "m", False, 200, None, 1,
             2, 3, 0.5, None, "miss", "a", 0)  # fmt: skip
    for _ in range(5000):  # ~2 MB: the loop side only queues, whatever the pipe does
        writer.write(entry)
    assert writer.dropped > 0
    received = bytearray()

    def drain() -> None:
        while chunk := os.read(read_end, 1 << 16):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    writer.close()
    os.close(write_end)
    reader.join(10)
    lines = bytes(received).splitlines()
    assert len(lines) == writer.written == 5000 - writer.dropped
    first = json.loads(lines[0])
    assert set(first) == set(FIELDS) and first["v"] == 1 and first["sample_rate"] == 1.0
    assert (
        first["time"] == "2025-03-03T00:00:00.500Z"
        and first["latency_ms"] == 500
        and first["ttfb_ms"] is None
    )
    os.close(read_end)


def test_sampling_and_client_ids() -> None:
    draws = itertools.cycle([0.1, 0.6])
    writer = AccessLogWriter(1, rng=lambda: next(draws))
    assert not writer.sampled()  # off until configured
    writer.configure(True, 0.5, HASH_KEY.encode())
    assert [writer.sampled() for _ in range(4)] == [True, False, True, False]
    digest = hashlib.sha256(HEAVY.encode()).digest()
    assert writer.client_id(digest) == client_id(HEAVY) and writer.client_id(None) is None
    writer.configure(True, 1.0, b"another key")
    assert writer.client_id(digest) != client_id(HEAVY)
    writer.configure(True, 1.0, None)
    assert writer.client_id(digest) is None
    writer.close()
