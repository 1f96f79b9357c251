"""Serving: the OpenAI endpoints, streaming pass-through, health endpoints, the metrics contract."""

from __future__ import annotations

from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, metric, upstream


async def test_chat_completions_embeddings_and_models(harness: Harness, fake: FakeUpstream) -> None:
    await harness.start(config(upstream(fake.url), upstream(fake.url, name="e", model="emb")))
    status, _, body = await harness.chat()
    assert status == 200 and body["object"] == "chat.completion"
    status, _, body = await harness.post("/v1/completions", {"model": "m", "prompt": "hi"})
    assert status == 200 and body["object"] == "text_completion"
    status, _, body = await harness.post("/v1/embeddings", {"model": "emb", "input": "hi"})
    assert status == 200 and body["data"][0]["embedding"]
    async with harness.session.get(harness.url + "/v1/models") as resp:
        models = await resp.json()
    assert sorted(m["id"] for m in models["data"]) == ["emb", "m"]


async def test_stream_is_relayed_as_it_arrives(harness: Harness, fake: FakeUpstream) -> None:
    fake.default = FakeBehavior(chunks=3, chunk_delay=0.3)
    await harness.start(config(upstream(fake.url)))
    payload = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with harness.session.post(harness.url + "/v1/chat/completions", json=payload) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        first = await resp.content.readuntil(b"\n\n")
        # the first event arrives while the upstream is still producing the rest
        assert b'"content":"ok"' in first and fake.stats.active == 1
        rest = await resp.read()
    assert rest.rstrip().endswith(b"data: [DONE]")


async def test_health_ready_and_unknown_paths(harness: Harness, fake: FakeUpstream) -> None:
    server = await harness.start(config(upstream(fake.url)))
    ops, api = server.metrics_url, server.url
    cases = [(ops, "/healthz", 200), (ops, "/readyz", 200), (ops, "/metrics", 200), (ops, "/v1/models", 404)]
    # the API port (what the Service exposes) serves the API alone
    cases += [(api, "/healthz", 404), (api, "/readyz", 404), (api, "/metrics", 404)]
    cases += [(api, "/nope", 404), (api, "/v1/files", 404)]
    for base, path, code in cases:
        async with harness.session.get(base + path) as resp:
            assert resp.status == code, (base, path)
            assert resp.headers["x-request-id"]
            if code == 404:
                assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_a_known_path_asked_with_another_method_is_a_405_naming_the_allowed_ones(
    harness: Harness, fake: FakeUpstream
) -> None:
    server = await harness.start(config(upstream(fake.url)))
    ops, api = server.metrics_url, server.url
    cases = [(api, "GET", "/v1/chat/completions", "POST"), (api, "PUT", "/v1/embeddings", "POST")]
    cases += [(api, "DELETE", "/v1/completions", "POST"), (api, "POST", "/v1/models", "GET, HEAD")]
    cases += [(ops, "POST", "/metrics", "GET, HEAD"), (ops, "DELETE", "/readyz", "GET, HEAD")]
    for base, method, path, allow in cases:
        async with harness.session.request(method, base + path) as resp:
            body = await resp.json()
            assert resp.status == 405 and resp.headers["Allow"] == allow, (method, path)
            assert resp.headers["x-request-id"]
            assert body["error"]["type"] == "invalid_request_error"
            assert body["error"]["code"] == "method_not_allowed" and path in body["error"]["message"]
    assert fake.stats.received == 0
    # a path that is not served at all stays a 404, whatever the method
    async with harness.session.post(api + "/v1/chat/completions/", json={}) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "unknown_url"


async def test_metrics_contract(harness: Harness, fake: FakeUpstream) -> None:
    cfg = config(
        upstream(fake.url),
        limits={"defaultTier": "free", "tiers": [{"name": "free", "requestsPerMinute": 6000}]},
    )
    await harness.start(cfg)
    assert (await harness.chat(max_tokens=5))[0] == 200
    assert (await harness.chat(stream=True))[0] == 200
    text = await harness.metrics()
    route = {"route": "ns/r"}
    labels = {**route, "tier": "free", "upstream": "a"}
    assert metric(text, "llmroute_requests_total", **labels, code="200", cache="bypass") == 2
    assert metric(text, "llmroute_request_duration_seconds_count", **labels) == 2
    assert metric(text, "llmroute_time_to_first_byte_seconds_count", **labels) == 2
    assert metric(text, "llmroute_inflight_requests", **route) == 0
    assert metric(text, "llmroute_tokens_total", **route, tier="free", direction="input") > 0
    assert metric(text, "llmroute_tokens_total", **route, tier="free", direction="output") >= 4
    assert metric(text, "llmroute_upstream_healthy", **route, upstream="a") == 1
    assert "llmroute_ratelimited_total" in text
    for line in text.splitlines():
        if line.startswith("llmroute_requests_total{"):
            keys = sorted(
                part.split("=")[0] for part in line[line.index("{") + 1 : line.index("}")].split(",")
            )
            assert keys == ["cache", "code", "route", "tier", "upstream"]
