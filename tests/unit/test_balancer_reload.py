"""What the balancer learned about an upstream stays with the endpoint it was learned from. Before, a
reload that pointed an upstream's name at another URL kept the old endpoint's ejection (the new one was
skipped for up to ``maxEjectSeconds``), its failures, latency, quota and engine capacity."""

from __future__ import annotations

import random
from typing import Any

from multidict import CIMultiDict

from llmroute.proxy.balancer import Balancer
from llmroute.proxy.engines import EngineLoad
from llmroute.spec.proxyconfig import PassiveHealthConfig, ProxyConfig

POLICY = PassiveHealthConfig(consecutive_failures=1, eject_seconds=300.0, max_eject_seconds=900.0)


def _config(url_a: str, metrics_a: str | None = None) -> ProxyConfig:
    a: dict[str, Any] = {"name": "a", "url": url_a, "model": "m"}
    if metrics_a is not None:
        a["metricsUrl"] = metrics_a
    b = {"name": "b", "url": "http://b:8000/v1", "model": "m", "group": 1}
    return ProxyConfig.model_validate({"route": {"namespace": "ns", "name": "r"}, "upstreams": [a, b]})


def _learned(balancer: Balancer, now: float) -> None:
    """``a`` failed (ejected), was slow, answered a 429 and has engine readings; two requests still out."""
    balancer.started("a")
    balancer.started("a")
    balancer.success("a", 9.0)
    balancer.failure("a", now, POLICY)
    balancer.answered("a", 429, CIMultiDict({"Retry-After": "600"}), now)
    balancer.signals.reading("a", EngineLoad("vLLM", waiting=0, running=8, kv_cache_usage=0.5), now, 2)


def test_an_upstream_pointed_at_another_url_starts_afresh() -> None:
    health: list[tuple[str, bool]] = []
    balancer = Balancer(lambda name, healthy: health.append((name, healthy)), random.Random(1))
    old = _config("http://old:8000/v1", "http://old:8000/metrics")
    balancer.sync(old)
    _learned(balancer, 10.0)
    assert [u.name for u in balancer.plan(old, old.upstreams, 11.0)] == ["b"]
    new = _config("http://new:8000/v1", "http://new:8000/metrics")
    balancer.sync(new)
    state = balancer.state("a")
    assert not state.ejected(11.0) and state.failures == 0 and state.ewma == 0.0
    assert state.inflight == 2  # the requests still out to the old URL end here
    assert "a" not in balancer.signals.quotas and balancer.signals.capacity("a") is None
    assert health[-1] == ("a", True)
    assert [u.name for u in balancer.plan(new, new.upstreams, 11.0)] == ["a", "b"]
    balancer.finished("a")
    balancer.finished("a")
    assert balancer.state("a").inflight == 0


def test_the_same_url_keeps_what_was_learned_and_a_new_metrics_url_drops_the_readings() -> None:
    balancer = Balancer(lambda name, healthy: None, random.Random(1))
    balancer.sync(_config("http://a:8000/v1", "http://a:8000/metrics"))
    _learned(balancer, 10.0)
    balancer.sync(_config("http://a:8000/v1", "http://a:8000/metrics"))
    assert balancer.state("a").ejected(11.0) and balancer.signals.capacity("a") == 16.0
    balancer.sync(_config("http://a:8000/v1", "http://a:9000/metrics"))
    assert balancer.state("a").ejected(11.0) and "a" in balancer.signals.quotas
    assert balancer.signals.capacity("a") is None  # another page, perhaps another engine


def test_changed_eject_times_apply_to_an_ejection_running() -> None:
    """Ejected for 300 s at t=10, then reloaded with ``ejectSeconds: 10``: back in the rotation at t=20.
    Before, the ejection kept the length it was given and the upstream stayed out until t=310."""
    balancer = Balancer(lambda name, healthy: None, random.Random(1))
    config = _config("http://a:8000/v1")
    balancer.sync(config)
    balancer.failure("a", 10.0, POLICY)
    assert balancer.state("a").ejected(200.0)
    shorter = config.model_copy(
        update={"passive_health": config.passive_health.model_copy(update={"eject_seconds": 10.0})}
    )
    balancer.sync(shorter)
    assert balancer.state("a").ejected(19.0) and not balancer.state("a").ejected(20.0)
    capped = config.model_copy(
        update={"passive_health": config.passive_health.model_copy(update={"max_eject_seconds": 5.0})}
    )
    balancer.sync(capped)
    assert not balancer.state("a").ejected(15.0)
