"""Every response carries ``x-request-id`` (the client's when it is sane, else a fresh one), the upstream is
sent the same id, and the proxy's log lines about the request name it."""

from __future__ import annotations

import logging
import re

import pytest

from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, tier, upstream

GENERATED = re.compile(r"[0-9a-f]{32}")


def rid(headers: dict[str, str]) -> str:
    """The request id among ``headers`` (names compared case-insensitively, as HTTP does)."""
    return next(v for k, v in headers.items() if k.lower() == "x-request-id")


IDS = [
    ("req-123", "req-123"),
    ("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
    ("trace:span/1+x=y_z.", "trace:span/1+x=y_z."),
    ("x" * 128, "x" * 128),
    ("x" * 129, None),  # too long
    ("has space", None),
    ("quote\"'", None),
    ("ünïcode", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("sent", "kept"), IDS)
async def test_the_clients_id_is_kept_when_sane(
    harness: Harness, fake: FakeUpstream, sent: str | None, kept: str | None
) -> None:
    await harness.start(config(upstream(fake.url)))
    headers = {} if sent is None else {"x-request-id": sent}
    status, got, _ = await harness.chat(headers=headers)
    assert status == 200
    answered = rid(got)
    assert answered == kept if kept is not None else GENERATED.fullmatch(answered)
    assert rid(fake.stats.recent[-1].headers) == answered


async def test_every_kind_of_answer_carries_an_id(harness: Harness, fake: FakeUpstream) -> None:
    keys = harness.dir / "keys"
    keys.write_text("sk-a\n")
    limits = {"tiers": [tier("t", apiKeysFile=str(keys), requestsPerMinute=60)]}
    server = await harness.start(config(upstream(fake.url), limits=limits, maxBodyBytes=2048))
    auth = {"Authorization": "Bearer sk-a"}
    answers = [
        await harness.chat(headers=auth, temperature=0),  # 200, stored
        await harness.chat(headers=auth, temperature=0),  # 429 (one a second)
        await harness.chat(headers={"Authorization": "Bearer nope"}),  # 401
        await harness.chat(headers=auth, model="nope"),  # 404 (or 429: both carry the id)
        await harness.chat(headers=auth, n="x"),  # 400
        await harness.chat(headers=auth, messages=[{"role": "user", "content": "x" * 4096}]),  # 413
        await harness.post("/v1/unknown", {}),
    ]
    statuses = [a[0] for a in answers]
    assert statuses[:3] == [200, 429, 401] and 400 in statuses and 413 in statuses and statuses[-1] == 404
    ids = [rid(a[1]) for a in answers]
    assert all(GENERATED.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
    async with harness.session.get(server.metrics_url + "/readyz") as resp:
        assert GENERATED.fullmatch(resp.headers["x-request-id"])


async def test_stream_and_upstream_ids(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url)))
    status, headers, _ = await harness.chat(headers={"x-request-id": "mine"}, stream=True)
    assert status == 200 and rid(headers) == "mine"


async def test_log_lines_name_the_request(
    harness: Harness, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    await harness.start(config(upstream(fake.url), passiveHealth={"retries": 0}))
    fake.default = FakeBehavior(fail="reset")
    with caplog.at_level(logging.INFO, logger="llmroute.proxy.forward"):
        status, headers, _ = await harness.chat(headers={"x-request-id": "complaint-42"})
    assert status == 502 and rid(headers) == "complaint-42"
    assert any("complaint-42" in r.getMessage() for r in caplog.records)
