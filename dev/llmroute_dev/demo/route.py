"""The demo's LLMRoute (``route.yaml`` beside this module), its Secrets and the API clients that send
its traffic.

Keys are random for every run. Clients: two premium applications (one busy, one less so), one heavy
batch client on the standard tier that runs into its per-client limit at peak, and a handful of
occasional standard-tier users.
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmroute.spec.route import LLMRoute
from llmroute_dev.demo.loadgen import Client

ROUTE_FILE = Path(__file__).with_name("route.yaml")
# (client, tier, share of the traffic)
CLIENTS: tuple[tuple[str, str, float], ...] = (
    ("web-app", "premium", 0.40),
    ("mobile-app", "premium", 0.15),
    ("batch-eval", "standard", 0.25),
    *((f"analyst-{i}", "standard", 0.04) for i in range(1, 6)),
)


@dataclass(frozen=True)
class DemoRoute:
    route: dict[str, Any]
    secrets: list[dict[str, Any]] = field(repr=False)
    clients: list[Client] = field(repr=False)
    upstream_keys: dict[str, str] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.route["metadata"]["name"])

    @property
    def model(self) -> str:
        return str(self.route["spec"]["upstreams"][0]["model"])


def route_template() -> dict[str, Any]:
    text = ROUTE_FILE.read_text()
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}


def build(namespace: str, upstream_urls: dict[str, str]) -> DemoRoute:
    """The route with ``upstream_urls`` (name -> base URL) filled in, validated; Secrets and clients."""
    route = copy.deepcopy(route_template())
    route["metadata"]["namespace"] = namespace
    for upstream in route["spec"]["upstreams"]:
        upstream["url"] = upstream_urls[upstream["name"]]
    LLMRoute.from_object(route)  # fail early, with pydantic's message, if the file was edited wrongly
    upstream_keys = {u["name"]: f"sk-upstream-{secrets.token_hex(12)}" for u in route["spec"]["upstreams"]}
    clients = [
        Client(name, tier, f"sk-{name}-{secrets.token_hex(8)}", share) for name, tier, share in CLIENTS
    ]
    by_tier: dict[str, list[str]] = {}
    for c in clients:
        by_tier.setdefault(c.tier, []).append(c.key)
    return DemoRoute(
        route=route,
        secrets=[
            _secret("upstream-keys", upstream_keys),
            _secret("client-keys", {tier: "\n".join(keys) + "\n" for tier, keys in by_tier.items()}),
        ],
        clients=clients,
        upstream_keys=upstream_keys,
    )
