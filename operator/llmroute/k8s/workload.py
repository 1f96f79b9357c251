"""Read and write the proxy's workload: the Deployment's scale, its children (PodDisruptionBudget too),
conflicting autoscalers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from llmroute.core.observed import Scale
from llmroute.k8s.ownership import check_owned
from llmroute.render.delivery import generation_of, stamp_generation
from llmroute.render.workload import CONFIG_HASH_ANNOTATION

TEMPLATE_HASH_ANNOTATION = "llmroute.io/template-hash"
# digest of what llmroute sets as the apiserver stored it (a Deployment's pod template, a NetworkPolicy's
# spec), recorded after each write: a stored object without it was changed by hand since
LIVE_HASH_ANNOTATION = "llmroute.io/live-hash"
MERGE = "application/merge-patch+json"


@dataclass(frozen=True)
class Workload:
    api: client.ApiClient

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    # --- scale -----------------------------------------------------------------------------------
    def get_scale(self, namespace: str, deployment: str) -> Scale | None:
        try:
            scale = self.apps.read_namespaced_deployment_scale(deployment, namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return Scale(scale.spec.replicas or 0, (scale.status.replicas if scale.status else 0) or 0)

    def set_replicas(self, namespace: str, deployment: str, replicas: int) -> None:
        self.apps.patch_namespaced_deployment_scale(
            deployment, namespace, {"spec": {"replicas": replicas}}, _content_type=MERGE
        )

    # --- children ----------------------------------------------------------------------------------
    def apply_configmap(self, obj: dict[str, Any]) -> bool:
        """Create the ConfigMap, or patch it when its content hash differs. True if anything was written.

        Every write raises the config's generation by one (a new ConfigMap starts at 1), so the proxies
        can tell the newer of two configs whatever way each reached them.
        """
        meta = obj["metadata"]
        try:
            current = self.core.read_namespaced_config_map(meta["name"], meta["namespace"])
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            self.core.create_namespaced_config_map(meta["namespace"], stamp_generation(obj, 1))
            return True
        check_owned("ConfigMap", obj, current.metadata)
        annotations = current.metadata.annotations or {}
        generation = generation_of(annotations)
        want = meta["annotations"][CONFIG_HASH_ANNOTATION]
        if (
            annotations.get(CONFIG_HASH_ANNOTATION) == want
            and current.data == stamp_generation(obj, generation)["data"]
        ):
            return False
        stamped = stamp_generation(obj, generation + 1)
        patch = {
            "metadata": {
                "annotations": stamped["metadata"]["annotations"],
                "labels": meta["labels"],
                # two writers that read the same generation must not both write the next one
                "resourceVersion": current.metadata.resource_version,
            },
            "data": stamped["data"],
        }
        self.core.patch_namespaced_config_map(meta["name"], meta["namespace"], patch, _content_type=MERGE)
        return True

    def apply_deployment(self, obj: dict[str, Any]) -> str | None:
        """Create the Deployment, or patch its pod template when the rendered one changed or the stored
        one was changed by hand (never its replicas, which only move through the scale subresource).
        Returns "created", "updated" (the route changed), "restored" (a hand edit put back) or None.

        A hand edit is told by :data:`LIVE_HASH_ANNOTATION`. Every ``apply_*`` raises
        :class:`~llmroute.k8s.ownership.NotOwnedError` (writing nothing) when an object of the name exists
        that the route does not control."""
        meta = obj["metadata"]
        digest = _digest({k: v for k, v in obj["spec"].items() if k != "replicas"})
        meta.setdefault("annotations", {})[TEMPLATE_HASH_ANNOTATION] = digest
        try:
            current = self.apps.read_namespaced_deployment(meta["name"], meta["namespace"])
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            created = self.apps.create_namespaced_deployment(meta["namespace"], obj)
            self._record_live(created, self.apps.patch_namespaced_deployment)
            return "created"
        check_owned("Deployment", obj, current.metadata)
        annotations = current.metadata.annotations or {}
        ours = annotations.get(TEMPLATE_HASH_ANNOTATION) == digest
        if ours and annotations.get(LIVE_HASH_ANNOTATION) == self._live_digest(current):
            return None
        spec = {k: v for k, v in obj["spec"].items() if k not in ("replicas", "selector")}
        null_removed(spec["template"], self.api.sanitize_for_serialization(current.spec.template))
        patch = {"metadata": {"annotations": meta["annotations"], "labels": meta["labels"]}, "spec": spec}
        patched = self.apps.patch_namespaced_deployment(
            meta["name"], meta["namespace"], patch, _content_type=MERGE
        )
        self._record_live(patched, self.apps.patch_namespaced_deployment)
        if patched.metadata.resource_version == current.metadata.resource_version:
            return None  # nothing llmroute sets had changed (e.g. only kubectl's restartedAt)
        return "updated" if not ours else "restored"

    def _live_digest(self, stored: Any) -> str:
        """The digest of what llmroute sets in ``stored`` (a V1Deployment or V1NetworkPolicy)."""
        part = stored.spec.template if isinstance(stored, client.V1Deployment) else stored.spec
        return _digest(self.api.sanitize_for_serialization(part))

    def _record_live(self, stored: Any, patch_fn: Any) -> None:
        meta = stored.metadata
        live = self._live_digest(stored)
        if (meta.annotations or {}).get(LIVE_HASH_ANNOTATION) == live:
            return
        patch = {"metadata": {"annotations": {LIVE_HASH_ANNOTATION: live}}}
        patch_fn(meta.name, meta.namespace, patch, _content_type=MERGE)

    def apply_service(self, obj: dict[str, Any]) -> str | None:
        """Create the Service, or put back its type, selector and ports when they differ from the
        rendered ones (a hand edit that would send the route's traffic elsewhere or nowhere). Returns
        "created", "restored" or None."""
        meta, want = obj["metadata"], obj["spec"]
        try:
            current = self.core.read_namespaced_service(meta["name"], meta["namespace"])
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            self.core.create_namespaced_service(meta["namespace"], obj)
            return "created"
        check_owned("Service", obj, current.metadata)
        have = self.api.sanitize_for_serialization(current.spec) or {}
        keys = ("name", "port", "targetPort", "protocol")
        ports = [{k: p.get(k) for k in keys} for p in have.get("ports") or []]
        selector = have.get("selector") or {}
        if (have.get("type"), selector, ports) == (want["type"], want["selector"], want["ports"]):
            return None
        # a merge patch merges maps: a selector key llmroute does not set is removed explicitly
        unwanted = {k: None for k in selector if k not in want["selector"]}
        patch = {
            "spec": {"type": want["type"], "selector": unwanted | want["selector"], "ports": want["ports"]}
        }
        self.core.patch_namespaced_service(meta["name"], meta["namespace"], patch, _content_type=MERGE)
        return "restored"

    def apply_network_policy(self, obj: dict[str, Any]) -> bool:
        """Create the proxy's NetworkPolicy, or patch its spec when the rendered one changed or the stored
        one was changed by hand (:data:`LIVE_HASH_ANNOTATION`). True if anything was written. (A policy
        later disabled in the route is left as it is: llmroute deletes nothing; it goes with the route,
        or by hand.)"""
        meta = obj["metadata"]
        digest = _digest(obj["spec"])
        meta.setdefault("annotations", {})[TEMPLATE_HASH_ANNOTATION] = digest
        api = client.NetworkingV1Api(self.api)
        try:
            current = api.read_namespaced_network_policy(meta["name"], meta["namespace"])
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            self._record_live(
                api.create_namespaced_network_policy(meta["namespace"], obj),
                api.patch_namespaced_network_policy,
            )
            return True
        check_owned("NetworkPolicy", obj, current.metadata)
        annotations = current.metadata.annotations or {}
        if annotations.get(TEMPLATE_HASH_ANNOTATION) == digest and annotations.get(
            LIVE_HASH_ANNOTATION
        ) == self._live_digest(current):
            return False
        patch = {
            "metadata": {"annotations": meta["annotations"], "labels": meta["labels"]},
            "spec": obj["spec"],
        }
        patched = api.patch_namespaced_network_policy(
            meta["name"], meta["namespace"], patch, _content_type=MERGE
        )
        self._record_live(patched, api.patch_namespaced_network_policy)
        return bool(patched.metadata.resource_version != current.metadata.resource_version)

    def apply_pdb(self, obj: dict[str, Any]) -> bool:
        """Create the PodDisruptionBudget, or patch its budget when it differs. True if anything was
        written."""
        meta = obj["metadata"]
        policy = client.PolicyV1Api(self.api)
        try:
            current = policy.read_namespaced_pod_disruption_budget(meta["name"], meta["namespace"])
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            policy.create_namespaced_pod_disruption_budget(meta["namespace"], obj)
            return True
        check_owned("PodDisruptionBudget", obj, current.metadata)
        have = self.api.sanitize_for_serialization(current.spec) or {}
        keys = ("minAvailable", "maxUnavailable", "selector", "unhealthyPodEvictionPolicy")
        if all(have.get(k) == obj["spec"].get(k) for k in keys):
            return False
        # a merge patch: the budget key not wanted is set to null, so minAvailable and maxUnavailable never
        # end up both set
        spec = {"minAvailable": None, "maxUnavailable": None, **obj["spec"]}
        policy.patch_namespaced_pod_disruption_budget(
            meta["name"], meta["namespace"], {"spec": spec}, _content_type=MERGE
        )
        return True

    # --- other autoscalers --------------------------------------------------------------------------
    def conflicting_autoscalers(self, namespace: str, deployment: str) -> list[str]:
        """HorizontalPodAutoscalers and KEDA ScaledObjects that target ``deployment``."""
        found = []
        hpas = client.AutoscalingV2Api(self.api).list_namespaced_horizontal_pod_autoscaler(namespace)
        for hpa in hpas.items:
            ref = hpa.spec.scale_target_ref
            if ref.kind == "Deployment" and ref.name == deployment:
                found.append(f"HorizontalPodAutoscaler/{hpa.metadata.name}")
        try:
            scaled = client.CustomObjectsApi(self.api).list_namespaced_custom_object(
                "keda.sh", "v1alpha1", namespace, "scaledobjects"
            )
        except client.ApiException as exc:
            if exc.status != 404:  # KEDA not installed
                raise
            scaled = {"items": []}
        for item in scaled["items"]:
            ref = item.get("spec", {}).get("scaleTargetRef", {})
            if ref.get("kind", "Deployment") == "Deployment" and ref.get("name") == deployment:
                found.append(f"ScaledObject/{item['metadata']['name']}")
        return found


# pod-spec fields a route may set and later unset (a merge patch keeps what it does not name)
OPTIONAL_POD_FIELDS = (
    "nodeSelector",
    "tolerations",
    "affinity",
    "topologySpreadConstraints",
    "priorityClassName",
    "imagePullSecrets",
)


def null_removed(want: dict[str, Any], have: dict[str, Any]) -> None:
    """Set to null (in ``want``, a pod template patch) what the Deployment has and the route no longer
    asks for: the optional pod-spec fields and pod annotations (but kubectl's, e.g. ``rollout restart``'s),
    so unsetting them in the route works."""
    pod, had = want.setdefault("spec", {}), have.get("spec") or {}
    for key in OPTIONAL_POD_FIELDS:
        if key in had and key not in pod:
            pod[key] = None
    annotations = want.setdefault("metadata", {}).setdefault("annotations", {})
    for key in (have.get("metadata") or {}).get("annotations") or {}:
        if not key.startswith("kubectl.kubernetes.io/"):
            annotations.setdefault(key, None)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
