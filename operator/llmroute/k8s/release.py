"""Let LLMRoutes go when the operator is removed (``llmroute release-routes``, the chart's pre-delete hook).

The operator keeps its finalizer (:data:`FINALIZER`, kopf's, for the daemon that reconciles each route) on
every LLMRoute; without an operator a deleted route would stay ``Terminating`` for ever, and so would the
CRD if it is deleted too. So, in this order: stop the operator (scale its Deployment to 0 and wait until
its pods are gone, else it would put the finalizer back), then remove the finalizer from every route. The
routes, their proxy Deployments and Services stay and keep serving; deleting a route afterwards is
immediate (the garbage collector removes its children).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION

FINALIZER = f"{GROUP}/finalizer"
JSON_PATCH = "application/json-patch+json"
log = logging.getLogger("llmroute.release")


def stop_operator(api: client.ApiClient, namespace: str, deployment: str, timeout: float = 120.0) -> None:
    """Scale the operator's Deployment to 0 and wait until none of its pods is left.

    Raises ``TimeoutError`` if pods remain after ``timeout`` seconds. A missing Deployment is fine.
    """
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    try:
        found = apps.read_namespaced_deployment(deployment, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return
        raise
    apps.patch_namespaced_deployment_scale(
        deployment, namespace, {"spec": {"replicas": 0}}, _content_type="application/merge-patch+json"
    )
    labels = found.spec.selector.match_labels or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    deadline = time.monotonic() + timeout
    while pods := core.list_namespaced_pod(namespace, label_selector=selector).items:
        if time.monotonic() > deadline:
            names = ", ".join(p.metadata.name for p in pods)
            raise TimeoutError(f"operator pods still running after {timeout:.0f} s: {names}")
        time.sleep(1)
    log.info("operator %s/%s stopped", namespace, deployment)


def release_routes(api: client.ApiClient, namespaces: list[str] | None = None) -> list[str]:
    """Remove :data:`FINALIZER` from every LLMRoute (in ``namespaces``, else in all); return the routes
    released as ``namespace/name``. Each removal is a JSON patch that first tests the finalizer is still at
    that index, so a concurrent change to the list is never overwritten (it fails with 422 instead)."""
    custom = client.CustomObjectsApi(api)
    items: list[dict[str, Any]] = []
    try:
        if namespaces:
            for ns in namespaces:
                items += custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
        else:
            items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        # no LLMRoute resource (the CRD was deleted, or never installed with crds.install off): no route
        # holds the finalizer, and the uninstall goes on
        log.info("no %s.%s resource in the cluster: no LLMRoute to release", PLURAL, GROUP)
        return []
    released = []
    for item in items:
        meta = item["metadata"]
        finalizers = meta.get("finalizers") or []
        if FINALIZER not in finalizers:
            continue
        at = f"/metadata/finalizers/{finalizers.index(FINALIZER)}"
        patch = [{"op": "test", "path": at, "value": FINALIZER}, {"op": "remove", "path": at}]
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], patch, _content_type=JSON_PATCH
        )
        released.append(f"{meta['namespace']}/{meta['name']}")
    log.info("released %d LLMRoute(s) from %s", len(released), FINALIZER)
    return released
