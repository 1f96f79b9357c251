"""Owner references as plain data: every child llmroute writes names its LLMRoute as controller, so the
garbage collector deletes it with the route (and ``kubectl get -o wide`` shows who owns it).

The same result as ``kopf.adopt`` (owner reference, the route's namespace, the route's labels where the
child has no value of its own), without importing the operator framework into the pure render layer.
"""

from __future__ import annotations

from typing import Any

from llmroute.spec.route import LLMRoute


def owner_reference(route: LLMRoute) -> dict[str, Any] | None:
    """The ``metav1.OwnerReference`` naming ``route`` as controller, or ``None`` when the route has no
    ``uid`` yet (rendered offline, never stored)."""
    if not route.metadata.uid:
        return None
    return {
        "apiVersion": route.api_version,
        "kind": route.kind,
        "name": route.metadata.name,
        "uid": route.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned(obj: dict[str, Any], route: LLMRoute) -> dict[str, Any]:
    """``obj`` (changed in place and returned) as a child of ``route``."""
    meta = obj.setdefault("metadata", {})
    meta.setdefault("namespace", route.metadata.namespace)
    labels = meta.setdefault("labels", {})
    for key, value in route.metadata.labels.items():
        labels.setdefault(key, value)
    ref = owner_reference(route)
    if ref is not None:
        refs = [r for r in meta.get("ownerReferences", []) if r.get("uid") != ref["uid"]]
        meta["ownerReferences"] = [*refs, ref]
    return obj
