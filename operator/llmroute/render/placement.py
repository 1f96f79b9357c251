"""The proxy pods' placement and policy fields (:class:`~llmroute.spec.placement.PodPlacement`) as pod-spec
entries: node selector, tolerations, affinity, topology spread, priority class, pull secrets, extra env and
pod annotations.

Topology spread by default (no ``topologySpreadConstraints`` in the route): ``maxSkew: 1`` over
``kubernetes.io/hostname`` and over ``topology.kubernetes.io/zone`` with ``whenUnsatisfiable: ScheduleAnyway``
(a preference, so a single node or zone still schedules every replica), counting this route's proxy pods
of the same ``pod-template-hash`` (a rollout's new pods spread on their own). A constraint without a
``labelSelector`` gets the route's pod selector.
"""

from __future__ import annotations

from typing import Any

from llmroute.spec.placement import PodPlacement

SPREAD_KEYS = ("kubernetes.io/hostname", "topology.kubernetes.io/zone")


def default_spread(selector: dict[str, str]) -> list[dict[str, Any]]:
    """One ScheduleAnyway constraint per key of :data:`SPREAD_KEYS` over the pods ``selector`` matches."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(selector)},
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key in SPREAD_KEYS
    ]


def pod_placement(placement: PodPlacement, selector: dict[str, str]) -> dict[str, Any]:
    """The pod-spec fields for ``placement`` (only those that are set, plus the default spread)."""
    wire = placement.to_wire()
    out: dict[str, Any] = {
        key: wire[key]
        for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets")
        if key in wire
    }
    if placement.topology_spread_constraints is None:
        out["topologySpreadConstraints"] = default_spread(selector)
    elif placement.topology_spread_constraints:
        out["topologySpreadConstraints"] = [
            {"labelSelector": {"matchLabels": dict(selector)}, **c} for c in wire["topologySpreadConstraints"]
        ]
    return out


def container_env(placement: PodPlacement) -> list[dict[str, Any]]:
    """The proxy container's extra ``env`` entries, in the route's order."""
    return list(placement.to_wire().get("env", []))


def pod_annotations(placement: PodPlacement, own: dict[str, str]) -> dict[str, str]:
    """llmroute's own pod annotations with the route's ``podAnnotations`` over them."""
    return {**own, **(placement.pod_annotations or {})}
