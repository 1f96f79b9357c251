"""The route's ``accessLog`` settings reach the proxy as a config with the hash key's mount path (never the
key), the Secret is mounted, and the proxy's snapshot reads the key from that file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmroute.proxy.snapshot import ConfigError, parse
from llmroute.render.config import SECRETS_DIR, build_proxy_config
from llmroute.render.workload import build_deployment
from llmroute.spec.route import LLMRoute
from tests.cases import route


def with_log(**log: object) -> LLMRoute:
    return LLMRoute.from_object(route("r", accessLog=log))


def test_off_by_default_and_absent_from_the_config() -> None:
    config = build_proxy_config(LLMRoute.from_object(route("r")), limits=[], divisor=1, replicas=1)
    assert config.access_log is None and "accessLog" not in config.dumps()


def test_enabled_route_renders_the_path_and_mounts_the_secret() -> None:
    r = with_log(enabled=True, sampleRate=0.25, hashKeySecretRef={"name": "log-key", "key": "hmac"})
    config = build_proxy_config(r, limits=[], divisor=1, replicas=1)
    assert config.access_log is not None
    assert config.access_log.sample_rate == 0.25
    assert config.access_log.hash_key_file == f"{SECRETS_DIR}/log-key/hmac"
    deployment = build_deployment(r, 1)
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    sources = [
        s["secret"] for v in volumes if "projected" in v for s in v["projected"]["sources"] if "secret" in s
    ]
    assert {"name": "log-key", "items": [{"key": "hmac", "path": "log-key/hmac"}]} in sources


def test_snapshot_reads_the_key_file_and_refuses_a_missing_one(tmp_path: Path) -> None:
    r = with_log(enabled=True, hashKeySecretRef={"name": "log-key", "key": "hmac"})
    wire = json.loads(build_proxy_config(r, limits=[], divisor=1, replicas=1).dumps())
    key_file = tmp_path / "hmac"
    wire["accessLog"]["hashKeyFile"] = str(key_file)
    wire.pop("hash")
    with pytest.raises(ConfigError, match="accessLog hashKeyFile"):
        parse(json.dumps(wire))
    key_file.write_text("k3y-material\n")
    snap = parse(json.dumps(wire))
    assert snap.access_log_key == b"k3y-material" and "k3y-material" not in repr(snap)
    assert any(path == str(key_file) for path, *_ in snap.signature)  # a rotated key reloads the config
