"""Config loading and hot reload: secrets from files/env, invalid configs refused, kubelet symlink swaps."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest

from llmroute.proxy.snapshot import ConfigError, load
from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, eventually, metric, ready_hash, reloaded_from, upstream

SECRET = "sk-upstream-very-secret-0123456789"


async def test_upstream_keys_come_from_file_and_env(
    harness: Harness, fake: FakeUpstream, fake_b: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = harness.dir / "api-key"
    key_file.write_text(SECRET + "\n")
    monkeypatch.setenv("LLMROUTE_TEST_KEY", "sk-from-env")
    cfg = config(
        upstream(fake.url, apiKeyFile=str(key_file)),
        upstream(fake_b.url, name="b", model="m2", apiKeyEnv="LLMROUTE_TEST_KEY"),
    )
    await harness.start(cfg)
    assert (await harness.chat(headers={"Authorization": "Bearer client-key"}))[0] == 200
    assert fake.stats.recent[-1].headers["Authorization"] == f"Bearer {SECRET}"
    assert (await harness.chat(model="m2"))[0] == 200
    assert fake_b.stats.recent[-1].headers["Authorization"] == "Bearer sk-from-env"
    assert SECRET not in harness.path.read_text()


async def test_rendered_config_falls_back_to_env_when_the_secret_file_is_absent(
    harness: Harness, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what `llmroute render` writes: both the Kubernetes mount path and the variable for local runs
    monkeypatch.setenv("LLMROUTE_API_KEY_PRIMARY", "sk-local-env")
    missing = str(harness.dir / "not-mounted" / "api-key")
    await harness.start(config(upstream(fake.url, apiKeyFile=missing, apiKeyEnv="LLMROUTE_API_KEY_PRIMARY")))
    assert (await harness.chat())[0] == 200
    assert fake.stats.recent[-1].headers["Authorization"] == "Bearer sk-local-env"


def test_missing_file_and_variable_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMROUTE_API_KEY_PRIMARY", raising=False)
    path = tmp_path / "config.json"
    missing = str(tmp_path / "absent")
    path.write_text(
        json.dumps(
            config(
                upstream("http://127.0.0.1:9/v1", apiKeyFile=missing, apiKeyEnv="LLMROUTE_API_KEY_PRIMARY")
            )
        )
    )
    with pytest.raises(ConfigError, match="cannot read"):
        load(str(path))


async def test_secrets_never_reach_errors_metrics_or_logs(
    harness: Harness, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = harness.dir / "api-key"
    key_file.write_text(SECRET)
    caplog.set_level(logging.DEBUG)
    await harness.start(config(upstream(fake.url, apiKeyFile=str(key_file)), passiveHealth={"retries": 0}))
    await fake.stop()  # every request now fails to connect
    status, _, body = await harness.chat()
    assert status == 502
    key_file.write_text("")  # a broken secret: the reload is refused and logged
    await eventually(lambda: "apiKeyFile" in caplog.text)
    for text in (json.dumps(body), await harness.metrics(), caplog.text):
        assert SECRET not in text


def test_invalid_configs_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    cases = {
        "not json": "{",
        "schema": json.dumps({"route": {"namespace": "a", "name": "b"}, "upstreams": []}),
        "unknown field": json.dumps({**config(upstream("http://x/v1")), "bogus": 1}),
        "missing key file": json.dumps(config(upstream("http://x/v1", apiKeyFile=str(tmp_path / "nope")))),
        "missing env": json.dumps(config(upstream("http://x/v1", apiKeyEnv="LLMROUTE_NOT_SET_ANYWHERE"))),
        "bad digest": json.dumps(
            config(
                upstream("http://x/v1"), limits={"tiers": [{"name": "t", "apiKeysFile": str(tmp_path / "k")}]}
            )
        ),
        "duplicate upstreams": json.dumps(config(upstream("http://x/v1"), upstream("http://y/v1"))),
        "hash mismatch": json.dumps({**config(upstream("http://x/v1")), "hash": "0000000000000000"}),
    }
    (tmp_path / "k").write_text("sha256:abcd\n")
    os.environ.pop("LLMROUTE_NOT_SET_ANYWHERE", None)
    for name, text in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigError):
            load(str(path))
        assert name


async def test_invalid_reload_keeps_last_good(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url)))
    good = await ready_hash(harness)
    harness.write("{ this is not json")

    async def counted() -> bool:
        return metric(await harness.metrics(), "llmroute_proxy_config_reloads_total", result="error") >= 1

    await eventually(counted)
    assert (await harness.chat())[0] == 200
    assert await ready_hash(harness) == good
    assert metric(await harness.metrics(), "llmroute_proxy_config_last_error") == 1


async def test_starts_unready_without_config_then_serves(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start("garbage")
    assert await ready_hash(harness) == ""
    status, _, _ = await harness.chat()
    assert status == 503
    harness.write(config(upstream(fake.url)))
    await eventually(lambda: ready_hash(harness))
    assert (await harness.chat())[0] == 200


def kubelet_publish(root: Path, version: int, cfg: dict[str, object]) -> None:
    """What kubelet does for a ConfigMap volume: new timestamped dir, then rename the ``..data`` symlink."""
    data = root / f"..2026_01_01_00_00_0{version}"
    data.mkdir()
    (data / "config.json").write_text(json.dumps(cfg))
    tmp_link = root / "..data_tmp"
    tmp_link.symlink_to(data.name)
    tmp_link.replace(root / "..data")
    if not (root / "config.json").is_symlink():
        (root / "config.json").symlink_to("..data/config.json")


async def test_kubelet_symlink_swap_reloads_without_dropping_inflight(
    harness: Harness, fake: FakeUpstream, fake_b: FakeUpstream
) -> None:
    root = harness.dir / "mount"
    root.mkdir()
    kubelet_publish(root, 1, config(upstream(fake.url)))
    harness.path = root / "config.json"
    await harness.start()
    first = await ready_hash(harness)
    fake.default = FakeBehavior(latency=0.5)
    inflight = asyncio.ensure_future(harness.chat())
    await eventually(lambda: fake.stats.active == 1)
    kubelet_publish(root, 2, config(upstream(fake_b.url, name="b")))
    await eventually(lambda: reloaded_from(harness, first))
    status, _, body = await inflight  # started on the old config, finished on it
    assert status == 200 and body["upstream"] == "a"
    status, _, body = await harness.chat()
    assert status == 200 and body["upstream"] == "b"
