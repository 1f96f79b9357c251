"""Write the config watch's access: the route's ServiceAccount, Role and RoleBinding
(:mod:`llmroute.render.delivery`). Created when missing; a Role's rules and a RoleBinding's subjects are put
back when they differ from the rendered ones. Nothing is ever deleted here: the garbage collector removes
them with their route."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from llmroute.k8s.ownership import check_owned

MERGE = "application/merge-patch+json"


def _read(api: client.ApiClient, obj: dict[str, Any]) -> Any:
    meta, kind = obj["metadata"], obj["kind"]
    rbac = client.RbacAuthorizationV1Api(api)
    read = {
        "ServiceAccount": client.CoreV1Api(api).read_namespaced_service_account,
        "Role": rbac.read_namespaced_role,
        "RoleBinding": rbac.read_namespaced_role_binding,
    }[kind]
    try:
        return read(meta["name"], meta["namespace"])
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _create(api: client.ApiClient, obj: dict[str, Any]) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    create = {
        "ServiceAccount": client.CoreV1Api(api).create_namespaced_service_account,
        "Role": rbac.create_namespaced_role,
        "RoleBinding": rbac.create_namespaced_role_binding,
    }[obj["kind"]]
    create(obj["metadata"]["namespace"], obj)


def _drift(api: client.ApiClient, obj: dict[str, Any], current: Any) -> dict[str, Any] | None:
    """The merge patch that puts back what the rendered object sets, or None when nothing differs."""
    field = {"Role": "rules", "RoleBinding": "subjects"}.get(obj["kind"])
    if field is None:
        return None
    stored = api.sanitize_for_serialization(getattr(current, field)) or []
    if stored == obj[field]:
        return None
    return {field: obj[field]}


def apply_access(api: client.ApiClient, objects: list[dict[str, Any]]) -> list[str]:
    """Create or repair each object; returns ``Kind/name`` of those written. Raises
    :class:`~llmroute.k8s.ownership.NotOwnedError` at the first one that exists and is not the route's
    (a user's ServiceAccount, Role or RoleBinding of the name is never used, changed or rebound)."""
    written = []
    rbac = client.RbacAuthorizationV1Api(api)
    for obj in objects:
        meta = obj["metadata"]
        current = _read(api, obj)
        if current is None:
            _create(api, obj)
        else:
            check_owned(obj["kind"], obj, current.metadata)
            patch = _drift(api, obj, current)
            if patch is None:
                continue
            if obj["kind"] == "Role":
                rbac.patch_namespaced_role(meta["name"], meta["namespace"], patch, _content_type=MERGE)
            else:
                rbac.patch_namespaced_role_binding(
                    meta["name"], meta["namespace"], patch, _content_type=MERGE
                )
        written.append(f"{obj['kind']}/{meta['name']}")
    return written
