"""The global rate limit holds while a route scales up on the real node: under load at twice the limit,
the operator takes the route from 1 to 4 replicas, writes per-replica shares divided by
max(current, desired) = 4 before the new pods exist, and the running proxy takes its smaller share within
seconds through the API watch — so the admitted rate never goes beyond the global figure (+5 %) while
the new pods start with the smaller share from their mounted file. Through the ConfigMap volume alone the
old pod would keep the whole limit for a minute: 1 + 3/4 of it with four pods."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from llmroute_dev.node.node import Node
from llmroute_dev.procs import wait_for
from tests.node.conftest import CLIENT_KEY, FIGURES, ROUTE_NAMESPACE, Route, Upstream, route_manifest
from tests.node.traffic import Traffic

NAME = "limited"
LIMIT_RPM = 600  # global: 10 requests/s
OFFERED_RPS = 20.0  # twice the limit, so every replica is always above its share
FROM, TO = 1, 4
SETTLE_SECONDS = 30  # measured after the last new pod is ready
TOLERANCE = 0.05


def _deployment(node: Node) -> dict[str, Any]:
    out = node.kubectl("-n", ROUTE_NAMESPACE, "get", "deployment", f"{NAME}-proxy", "-o", "json", check=False)
    return json.loads(out) if out.startswith("{") else {}


def _ready(node: Node) -> int:
    status = _deployment(node).get("status", {})
    return int(status.get("readyReplicas") or 0)


def _answers(url: str) -> bool:
    request = urllib.request.Request(f"{url}/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    with urllib.request.urlopen(request, timeout=2) as resp:
        return bool(resp.status == 200)


@pytest.fixture
def limited(node: Node, route: Route, fake_upstream: Upstream) -> Iterator[str]:
    """A route of its own with one tier limited to ``LIMIT_RPM`` globally, at one replica; deleted after."""
    scaling = {
        "metric": {"type": "RequestsPerSecond", "targetPerReplica": 1000},
        "predictive": {"enabled": False},
    }
    manifest = route_manifest(
        fake_upstream.url,
        proxy={"minReplicas": FROM, "maxReplicas": TO},
        scaling=scaling,
        rateLimits={
            "defaultTier": "standard",
            "tiers": [
                {
                    "name": "standard",
                    "priority": 10,
                    "requestsPerMinute": LIMIT_RPM,
                    "apiKeysSecretRef": {"name": "team-keys", "key": "keys"},  # the route fixture's Secret
                }
            ],
        },
    )
    manifest["metadata"]["name"] = NAME
    node.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    try:
        wait_for(
            lambda: _ready(node) == FROM, timeout=180, what="the limited route's proxy Ready", interval=0.5
        )
        ip = node.kubectl(
            "-n", ROUTE_NAMESPACE, "get", "service", f"{NAME}-proxy", "-o", "jsonpath={.spec.clusterIP}"
        )
        url = f"http://{ip}:80"
        wait_for(lambda: _answers(url), timeout=30, what="the Service answering", interval=0.1)
        yield url
    finally:
        node.kubectl("-n", ROUTE_NAMESPACE, "delete", "llmroute", NAME, "--wait=true", check=False)
        wait_for(
            lambda: not _deployment(node), timeout=120, what="the limited route's children gone", interval=1
        )


def _admitted_rate(traffic: Traffic, start: float, end: float) -> float:
    return traffic.counts(start, end)["200"] / (end - start)


def _max_window_rate(traffic: Traffic, start: float, end: float, window: float) -> float:
    """The highest admitted rate over any ``window`` seconds between ``start`` and ``end`` (1 s steps)."""
    rates, at = [], start
    while at + window <= end:
        rates.append(_admitted_rate(traffic, at, at + window))
        at += 1.0
    return max(rates)


def test_the_global_limit_holds_while_replicas_go_from_1_to_4(node: Node, limited: str) -> None:
    limit_rps = LIMIT_RPM / 60
    traffic = Traffic(limited, rate=OFFERED_RPS, keepalive=False).start()
    try:
        time.sleep(10)  # load: one replica holding the whole limit (traffic, not synchronisation)
        patched = time.monotonic()
        patch = json.dumps({"spec": {"proxy": {"minReplicas": TO}}})
        node.kubectl("-n", ROUTE_NAMESPACE, "patch", "llmroute", NAME, "--type=merge", "-p", patch)
        wait_for(lambda: _ready(node) == TO, timeout=180, what=f"{TO} Ready replicas", interval=0.25)
        all_ready = time.monotonic()
        time.sleep(SETTLE_SECONDS)  # keep the load on the four replicas (traffic, not synchronisation)
        end = time.monotonic()
    finally:
        traffic.stop()
    before = _admitted_rate(traffic, patched - 8, patched)
    transition = _admitted_rate(traffic, patched, end)
    after = _admitted_rate(traffic, all_ready, end)
    worst_30s = _max_window_rate(traffic, patched - 8, end, 30)
    worst_10s = _max_window_rate(traffic, patched - 8, end, 10)
    FIGURES["scale_up_global_limit"] = {
        "limit_rps": round(limit_rps, 2),
        "offered_rps": OFFERED_RPS,
        "replicas": f"{FROM} -> {TO}",
        "patch_to_all_ready_seconds": round(all_ready - patched, 1),
        "admitted_rps_before": round(before, 2),
        "admitted_rps_patch_to_end": round(transition, 2),
        "admitted_rps_after_all_ready": round(after, 2),
        "max_admitted_rps_any_30s": round(worst_30s, 2),
        "max_admitted_rps_any_10s": round(worst_10s, 2),
        "outcomes": dict(traffic.counts()),
    }
    figures = FIGURES["scale_up_global_limit"]
    assert traffic.counts()["200"] > 0 and set(traffic.counts()) <= {"200", "429"}, figures
    assert before >= 0.85 * limit_rps, figures  # the limit is what holds the load back, not capacity
    assert after >= 0.85 * limit_rps, figures  # the four replicas admit the global figure between them
    for rate in (transition, after, worst_30s):
        assert rate <= (1 + TOLERANCE) * limit_rps, figures
