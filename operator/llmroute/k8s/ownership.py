"""Whose an existing object is: llmroute writes only into children its route controls.

A child's name is derived from the route's (``<route>-proxy``, ``<route>-proxy-config``), so an object
of that name may already exist and belong to someone else: a user's Deployment, ConfigMap, Role or
RoleBinding. Patching it would overwrite their pod template, data or rules (and rebind their
RoleBinding to the proxies), and scale their Deployment. Before any write, :func:`check_owned` compares
the existing object's controller reference with the one llmroute renders and raises
:class:`NotOwnedError` when they differ; the reconcile then fails with reason ``NotOwned`` naming the
object and writes nothing into it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class NotOwnedError(Exception):
    """An object llmroute would write exists and is not controlled by the route.

    ``kind``/``name`` name the object, ``route`` the LLMRoute, ``controller`` the existing controller
    reference as ``Kind/name`` (``None``: no controller). ``transient`` is true when the controller is
    an earlier LLMRoute of the same name (deleted and created again): the garbage collector is removing
    the object and the next cycle creates it afresh.
    """

    def __init__(self, kind: str, name: str, route: str, controller: str | None, *, transient: bool) -> None:
        self.kind, self.name, self.route, self.controller = kind, name, route, controller
        self.transient = transient
        if transient:
            detail = f"is still owned by the deleted LLMRoute {route} of the same name; waiting for it to go"
        else:
            owner = f"controlled by {controller}" if controller else "not controlled by any object"
            detail = (
                f"exists and is {owner}, not LLMRoute {route}: llmroute writes nothing into it; "
                "delete or rename it, or rename the route"
            )
        super().__init__(f"{kind} {name} {detail}")


def _field(obj: Any, wire: str, python: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(wire)
    return getattr(obj, python, None)


def controller_of(meta: Any) -> Mapping[str, Any] | None:
    """The controller reference of ``meta`` (a ``V1ObjectMeta`` or its wire dict) as a wire dict with
    ``kind``, ``name``, ``uid``, or ``None`` when nothing controls the object."""
    refs: Sequence[Any] = _field(meta, "ownerReferences", "owner_references") or []
    for ref in refs:
        if _field(ref, "controller", "controller"):
            return {key: _field(ref, key, key) for key in ("kind", "name", "uid")}
    return None


def check_owned(kind: str, rendered: Mapping[str, Any], current: Any) -> None:
    """Raise :class:`NotOwnedError` unless ``current`` (the existing object's metadata, a
    ``V1ObjectMeta`` or wire dict) is controlled by the route that ``rendered`` (the wire object llmroute
    would write, owned by its route) names as controller. An object rendered without an owner (offline,
    a route with no ``uid``) is not checked."""
    meta = rendered["metadata"]
    want = controller_of(meta)
    if want is None:
        return
    have = controller_of(current)
    if have is not None and have.get("uid") == want["uid"]:
        return
    same_route = have is not None and (have.get("kind"), have.get("name")) == (want["kind"], want["name"])
    controller = f"{have.get('kind')}/{have.get('name')}" if have is not None else None
    raise NotOwnedError(kind, meta["name"], str(want["name"]), controller, transient=same_route)
