"""The mounted file as the proxy's boot source and fallback, on real sockets: ``/readyz`` says which
generation is served and from where, a newer file generation is followed, an older one (a file lagging
behind) is never served again, and ``--watch-configmap`` outside a cluster falls back to the file alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from llmroute.testing.fake_upstream import FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import ProxyProcess, config, eventually, metric, upstream


async def readyz(h: Harness) -> dict[str, Any]:
    assert h.server is not None
    async with h.session.get(h.server.metrics_url + "/readyz") as resp:  # the operations port
        body: dict[str, Any] = await resp.json()
        return body


async def test_the_file_is_followed_forward_and_never_back(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url), generation=2, passiveHealth={"retries": 1}))
    body = await readyz(harness)
    assert (body["generation"], body["source"], body["fileGeneration"]) == (2, "file", 2)
    assert body["watchError"] is None  # no watch asked for

    harness.write(config(upstream(fake.url), generation=3, passiveHealth={"retries": 2}))
    await eventually(lambda: _generation(harness, 3), 5)
    harness.write(config(upstream(fake.url), generation=1, passiveHealth={"retries": 0}))  # an older one
    await eventually(lambda: _file_generation(harness, 1), 5)
    assert (await readyz(harness))["generation"] == 3
    text = await harness.metrics()
    assert metric(text, "llmroute_proxy_config_updates_total", source="file", result="stale") == 1
    assert metric(text, "llmroute_proxy_config_updates_total", source="file", result="applied") == 2
    assert (await harness.chat())[0] == 200


async def _generation(h: Harness, generation: int) -> bool:
    return bool((await readyz(h))["generation"] == generation)


async def _file_generation(h: Harness, generation: int) -> bool:
    return bool((await readyz(h))["fileGeneration"] == generation)


async def test_watch_configmap_outside_a_cluster_serves_the_file(
    tmp_path: Path, fake: FakeUpstream, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config(upstream(fake.url), generation=4)))
    extra = ("--watch-configmap=chat-proxy-config", f"--api-credentials={tmp_path / 'none'}")
    proxy = ProxyProcess(path, tmp_path / "proxy.log", extra=extra)
    try:
        await proxy.ready()
        async with session.get(f"{proxy.metrics_url}/readyz") as resp:
            body = await resp.json()
        assert (body["generation"], body["source"]) == (4, "file")
    finally:
        proxy.stop()
    assert "--watch-configmap chat-proxy-config: no API here" in (tmp_path / "proxy.log").read_text()
