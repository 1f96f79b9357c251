"""Which LLMRoute scales a Deployment when several name it.

Two routes can target one Deployment: ``proxy.deploymentName`` of both names it, or one names the
Deployment another route created (``<route>-proxy``). Each writing its own replica count would undo the
other's every cycle. One route keeps the Deployment; the others treat it as taken by another autoscaler
(``ScalingLimited=True``, reason ``ConflictingAutoscaler``, naming the route) and write no replicas.

The route that keeps it, in order: the route that created the Deployment (no ``deploymentName``), then
the oldest (``metadata.creationTimestamp``), then the first by name, so every route's daemon reaches the
same verdict from the same list, and deleting the holder hands the Deployment to the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple


class Claim(NamedTuple):
    """One route's claim on a Deployment; claims sort in the order they are honoured."""

    named: bool  # False: the route created the Deployment (sorts first)
    created: str  # metadata.creationTimestamp, RFC 3339 (sorts by time)
    route: str  # metadata.name


def scale_target(body: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, deployment)`` the LLMRoute object ``body`` (wire form) scales."""
    meta = body["metadata"]
    proxy = (body.get("spec") or {}).get("proxy") or {}
    named = proxy.get("deploymentName")
    return str(meta.get("namespace", "")), str(named or f"{meta['name']}-proxy")


def claim(body: Mapping[str, Any]) -> Claim:
    """The claim the LLMRoute object ``body`` makes on :func:`scale_target`."""
    meta = body["metadata"]
    named = bool(((body.get("spec") or {}).get("proxy") or {}).get("deploymentName"))
    return Claim(named, str(meta.get("creationTimestamp") or ""), str(meta["name"]))


def rivals(claims: Iterable[Claim], route: str) -> list[str]:
    """``LLMRoute/<name>`` of the route that holds the Deployment when it is not ``route``, else ``[]``.
    ``claims`` are every route's claims on one Deployment, ``route``'s own among them."""
    ordered = sorted(set(claims))
    if not ordered or ordered[0].route == route:
        return []
    return [f"LLMRoute/{ordered[0].route}"]
