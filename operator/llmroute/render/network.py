"""The proxy's optional NetworkPolicy (``proxy.networkPolicy``), rendered with the other children.

Only ingress is restricted: the API port from ``apiFrom`` (default: pods of the route's namespace), the
metrics port from ``metricsFrom`` (default: pods of any namespace, where Prometheus lives; the metrics
carry no secrets), nothing else. Egress is left open: upstreams and DNS may be anywhere.
"""

from __future__ import annotations

from typing import Any

from llmroute.render.owner import owned
from llmroute.spec.route import LLMRoute
from llmroute.spec.upstream import NetworkPeer, ProxyTemplate


def peer(p: NetworkPeer) -> dict[str, Any]:
    """A ``NetworkPolicyPeer``; a peer with neither selector stands for the route's own namespace."""
    out: dict[str, Any] = {}
    if p.pod_selector is not None:
        out["podSelector"] = p.pod_selector.to_wire()
    if p.namespace_selector is not None:
        out["namespaceSelector"] = p.namespace_selector.to_wire()
    return out or {"podSelector": {}}


def network_policy(
    route: LLMRoute, name: str, labels: dict[str, str], selector: dict[str, str]
) -> dict[str, Any]:
    """The NetworkPolicy ``name`` (with ``labels``) for the proxy pods ``selector`` matches."""
    template = route.spec.proxy.template or ProxyTemplate()
    policy = route.spec.proxy.network_policy
    api_from = [peer(p) for p in policy.api_from] or [{"podSelector": {}}]
    metrics_from = [peer(p) for p in policy.metrics_from] or [{"namespaceSelector": {}}]
    obj: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": route.metadata.namespace, "labels": labels},
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": api_from, "ports": [{"protocol": "TCP", "port": template.port}]},
                {"from": metrics_from, "ports": [{"protocol": "TCP", "port": template.metrics_port}]},
            ],
        },
    }
    return owned(obj, route)
