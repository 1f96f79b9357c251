"""Decision delivery, pure parts: the access each route's proxies get to watch their ConfigMap (rendered),
the generation stamp, and which config a proxy serves when the file and the API disagree."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmroute.proxy.delivery import Delivery
from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.snapshot import ConfigSnapshot, load, parse
from llmroute.proxy.watch import ConfigWatcher
from llmroute.render import build_children
from llmroute.render.delivery import (
    API_ACCESS_DIR,
    CONFIG_GENERATION_ANNOTATION,
    TOKEN_EXPIRATION_SECONDS,
    generation_of,
    stamp_generation,
)
from llmroute.render.workload import build_configmap
from llmroute.spec import LLMRoute
from llmroute.spec.proxyconfig import CONFIG_KEY, ProxyConfig

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "manifests" / "examples" / "minimal.yaml"


def _route(**proxy: Any) -> LLMRoute:
    doc = yaml.safe_load(MINIMAL.read_text())
    doc["metadata"].update(namespace="llm", uid="0c6e7d5e-1111-4222-8333-444455556666")
    doc["spec"]["proxy"] = proxy
    return LLMRoute.from_object(doc)


def _config(retries: int = 2, generation: int = 0) -> ProxyConfig:
    body = {
        "route": {"namespace": "llm", "name": "chat"},
        "upstreams": [{"name": "a", "url": "http://127.0.0.1:1/v1", "model": "m"}],
        "passiveHealth": {"retries": retries},
        "generation": generation,
        "limits": {"identity": "Unauthenticated"},
    }
    return ProxyConfig.model_validate(body).with_hash()


def _kinds(route: LLMRoute) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in build_children(route, _config(), 2)}


def test_each_route_gets_a_role_for_its_own_configmap_only() -> None:
    children = _kinds(_route())
    role, binding, account = children["Role"], children["RoleBinding"], children["ServiceAccount"]
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["chat-proxy-config"],
            "verbs": ["get", "watch"],
        }
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "chat-proxy",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "chat-proxy", "namespace": "llm"}]
    assert account["automountServiceAccountToken"] is False
    for obj in (role, binding, account):
        assert obj["metadata"]["namespace"] == "llm"
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "LLMRoute"
        assert obj["metadata"]["ownerReferences"][0]["controller"] is True
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "chat"


def test_the_pod_mounts_a_bounded_token_and_watches_its_configmap() -> None:
    pod = _kinds(_route())["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "chat-proxy"
    assert "--watch-configmap=chat-proxy-config" in container["args"]
    volume = next(v for v in pod["volumes"] if v["name"] == "kube-api-access")
    sources = volume["projected"]["sources"]
    token = next(s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s)
    assert token["expirationSeconds"] == TOKEN_EXPIRATION_SECONDS <= 3600
    assert "audience" not in token  # the API server's own audience
    assert {"key": "ca.crt", "path": "ca.crt"} in next(
        s["configMap"]["items"] for s in sources if "configMap" in s
    )
    mount = next(m for m in container["volumeMounts"] if m["name"] == "kube-api-access")
    assert mount == {"name": "kube-api-access", "mountPath": API_ACCESS_DIR, "readOnly": True}


def test_a_route_that_names_its_service_account_gets_the_role_bound_to_it() -> None:
    children = _kinds(_route(template={"serviceAccountName": "gateway"}))
    assert "ServiceAccount" not in children
    assert children["RoleBinding"]["subjects"][0]["name"] == "gateway"
    assert children["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"] == "gateway"


def test_the_generation_stamp_leaves_the_content_hash_alone() -> None:
    configmap = build_configmap(_route(), _config())
    stamped = stamp_generation(configmap, 7)
    config = ProxyConfig.loads(stamped["data"][CONFIG_KEY])
    assert config.generation == 7 and config.hash == _config().hash == config.content_hash()
    assert generation_of(stamped["metadata"]["annotations"]) == 7
    assert stamped["metadata"]["annotations"][CONFIG_GENERATION_ANNOTATION] == "7"
    assert generation_of(configmap["metadata"]["annotations"]) == 0  # the input is not changed
    assert generation_of({CONFIG_GENERATION_ANNOTATION: "x"}) == 0


# --- which config a proxy serves ------------------------------------------------------------------------


class Served:
    def __init__(self) -> None:
        self.applied: list[tuple[str, int]] = []
        self.delivery = Delivery(self.apply, ProxyMetrics())

    def apply(self, snap: ConfigSnapshot) -> None:
        self.applied.append((snap.hash, snap.config.generation))

    @property
    def now(self) -> tuple[str, int]:
        served = self.delivery.served
        assert served is not None
        return served.hash, served.config.generation


def _file(tmp_path: Path, config: ProxyConfig) -> ConfigSnapshot:
    path = tmp_path / "config.json"
    path.write_text(config.dumps())
    return load(str(path))


def _key(config: ProxyConfig) -> tuple[str, int]:
    return config.hash, config.generation


def test_the_api_overtakes_the_file_and_the_lagging_file_never_takes_it_back(tmp_path: Path) -> None:
    proxy = Served()
    one, two, three = _config(1, 1), _config(2, 2), _config(3, 3)
    proxy.delivery.offer_file(_file(tmp_path, one))  # boot
    assert proxy.delivery.offer_api(two.dumps(), "uid-a")
    assert proxy.delivery.offer_api(three.dumps(), "uid-a")
    proxy.delivery.offer_file(_file(tmp_path, two))  # the kubelet catches up a minute later, one step behind
    proxy.delivery.offer_file(_file(tmp_path, three))
    assert not proxy.delivery.offer_api(two.dumps(), "uid-a")  # a stale event
    assert proxy.applied == [_key(one), _key(two), _key(three)]
    assert proxy.delivery.source == "api"


def test_without_the_api_the_proxy_follows_newer_files(tmp_path: Path) -> None:
    proxy = Served()
    proxy.delivery.offer_file(_file(tmp_path, _config(1, 4)))
    assert proxy.delivery.offer_api(_config(2, 5).dumps(), "uid-a")
    proxy.delivery.offer_file(_file(tmp_path, _config(3, 6)))  # the watch is down: the file is ahead
    assert proxy.now == _key(_config(3, 6)) and proxy.delivery.source == "file"
    assert not proxy.delivery.offer_api(_config(2, 5).dumps(), "uid-a")  # the watch reconnects late
    assert proxy.now == _key(_config(3, 6))


def test_an_edit_by_hand_or_a_recreated_configmap_is_served_from_the_api(tmp_path: Path) -> None:
    proxy = Served()
    assert proxy.delivery.offer_api(_config(1, 5).dumps(), "uid-a")
    assert proxy.delivery.offer_api(_config(4, 5).dumps(), "uid-a")  # same generation, other content
    assert proxy.now == _key(_config(4, 5))
    proxy.delivery.offer_file(_file(tmp_path, _config(1, 5)))  # the file with the pre-edit content: stale
    assert proxy.now == _key(_config(4, 5))
    assert proxy.delivery.offer_api(_config(2, 1).dumps(), "uid-b")  # deleted and created again
    assert proxy.now == _key(_config(2, 1))


def test_configs_without_generations_follow_the_file_as_before(tmp_path: Path) -> None:
    proxy = Served()
    proxy.delivery.offer_file(_file(tmp_path, _config(1)))
    proxy.delivery.offer_file(_file(tmp_path, _config(2)))
    proxy.delivery.offer_file(_file(tmp_path, _config(1)))
    assert [g for _, g in proxy.applied] == [0, 0, 0] and proxy.now == _key(_config(1))


def test_an_invalid_config_from_the_api_keeps_the_last_good_one(tmp_path: Path) -> None:
    proxy = Served()
    proxy.delivery.offer_file(_file(tmp_path, _config(1, 1)))
    broken = _config(2, 2).dumps().replace('"retries": 2', '"retries": "many"')
    assert not proxy.delivery.offer_api(broken, "uid-a")
    assert proxy.delivery.api_error is not None and "retries" in proxy.delivery.api_error
    assert proxy.now == _key(_config(1, 1))


def test_a_secret_change_reloads_the_api_config_even_while_the_file_lags(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("sk-old")

    def keyed(retries: int, generation: int) -> ProxyConfig:
        up = {"name": "a", "url": "http://127.0.0.1:1/v1", "model": "m", "apiKeyFile": str(key)}
        body = {"route": {"namespace": "llm", "name": "chat"}, "upstreams": [up], "generation": generation}
        body["limits"] = {"identity": "Unauthenticated"}
        body["passiveHealth"] = {"retries": retries}
        return ProxyConfig.model_validate(body).with_hash()

    proxy = Served()
    proxy.delivery.offer_file(_file(tmp_path, keyed(1, 1)))
    assert proxy.delivery.offer_api(keyed(2, 2).dumps(), "uid-a")
    key.write_text("sk-new-and-longer")
    proxy.delivery.offer_file(_file(tmp_path, keyed(1, 1)))  # the file watcher noticed the Secret file
    served = proxy.delivery.served
    assert served is not None and served.upstream_keys["a"] == "sk-new-and-longer"
    assert proxy.now == _key(keyed(2, 2))


@pytest.mark.parametrize("generation", [0, 3])
def test_parse_reads_the_generation(generation: int) -> None:
    assert parse(_config(1, generation).dumps()).config.generation == generation


def test_a_config_that_cannot_be_applied_is_logged_without_its_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(snap: ConfigSnapshot) -> None:
        raise ValueError("cannot connect to redis://:hunter2@store:6379/0")

    metrics = ProxyMetrics()
    delivery = Delivery(refuse, metrics)
    path = tmp_path / "config.json"
    path.write_text(_config(2, 2).dumps())
    watcher = ConfigWatcher(str(path), delivery.offer_file, metrics)
    with caplog.at_level(logging.ERROR, logger="llmroute.proxy"):
        assert not delivery.offer_api(_config(1, 1).dumps(), "uid-a")  # from the API
        assert not watcher.poll()  # from the mounted file
    assert delivery.served is None and delivery.api_error is not None
    assert watcher.last_error == "could not apply: ValueError"
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and all("ValueError at test_delivery.py" in m for m in messages), messages
    assert not any("hunter2" in m or r.exc_info for m, r in zip(messages, caplog.records, strict=True))
