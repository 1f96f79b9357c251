"""The proxy's PodDisruptionBudget (``policy/v1``), rendered with the other children when llmroute owns
the proxy Deployment.

``minAvailable`` or ``maxUnavailable`` from the route's ``proxy.template.podDisruptionBudget``; neither set:
``maxUnavailable: 1``: a node drain evicts one proxy at a time (the others keep serving while its
replacement starts), and it never blocks a drain, not even with one replica (``minAvailable: 1`` would).
``unhealthyPodEvictionPolicy: AlwaysAllow``: a pod that is not Ready never holds a drain up.
"""

from __future__ import annotations

from typing import Any

from llmroute.render.owner import owned
from llmroute.spec.placement import DisruptionBudget
from llmroute.spec.route import LLMRoute


def budget(spec: DisruptionBudget) -> dict[str, int | str]:
    """``{"minAvailable": ...}`` or ``{"maxUnavailable": ...}`` (default ``maxUnavailable: 1``)."""
    if spec.min_available is not None:
        return {"minAvailable": spec.min_available}
    return {"maxUnavailable": 1 if spec.max_unavailable is None else spec.max_unavailable}


def build_pdb(
    route: LLMRoute, name: str, labels: dict[str, str], selector: dict[str, str], spec: DisruptionBudget
) -> dict[str, Any]:
    """The PodDisruptionBudget ``name`` over the pods ``selector`` matches, owned by ``route``."""
    pdb: dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": route.metadata.namespace, "labels": dict(labels)},
        "spec": {
            **budget(spec),
            "selector": {"matchLabels": dict(selector)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
    return owned(pdb, route)
