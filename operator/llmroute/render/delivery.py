"""How a decision reaches the proxies in seconds: the config's generation stamp, and the API access each
proxy watches its own ConfigMap with.

A ConfigMap volume follows a change only on the kubelet's next sync (about a minute with default
settings), so the proxies also watch their ConfigMap through the API. What that takes, least privilege:

- a ServiceAccount per route (unless the route names its own), a Role granting ``get`` and ``watch`` on
  that route's ConfigMap alone (``resourceNames``), and a RoleBinding; all three owned by the route;
- in the pod, the ServiceAccount token as a projected volume with a bounded expiry (the kubelet rotates
  it; the proxy re-reads it on every connection), the cluster CA and the namespace — the same files
  ``automountServiceAccountToken`` would mount, which stays off — and ``--watch-configmap``.

The mounted file stays the boot source and the fallback. Each config carries a ``generation`` that the
writer raises with every content change (:func:`stamp_generation`), so a proxy serving a config from the
API never goes back to the older one the file still holds.
"""

from __future__ import annotations

import copy
from typing import Any

from llmroute.render.owner import owned
from llmroute.spec.proxyconfig import CONFIG_KEY, ProxyConfig
from llmroute.spec.route import LLMRoute

CONFIG_GENERATION_ANNOTATION = "llmroute.io/config-generation"
API_ACCESS_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
API_ACCESS_VOLUME = "kube-api-access"
# the shortest expiry the API allows is 10 min; the kubelet renews a token at 80 % of its life
TOKEN_EXPIRATION_SECONDS = 3600
WATCH_VERBS = ("get", "watch")  # the proxy reads its ConfigMap once, then watches it by name


def generation_of(annotations: dict[str, str] | None) -> int:
    """The generation a stored ConfigMap carries (0 when it has none or an unreadable one)."""
    value = (annotations or {}).get(CONFIG_GENERATION_ANNOTATION, "")
    return int(value) if value.isdigit() else 0


def stamp_generation(configmap: dict[str, Any], generation: int) -> dict[str, Any]:
    """A copy of a rendered ConfigMap whose config (and annotation) carry ``generation``.

    The content hash does not change: it leaves the generation out.
    """
    stamped = copy.deepcopy(configmap)
    config = ProxyConfig.loads(stamped["data"][CONFIG_KEY]).model_copy(update={"generation": generation})
    stamped["data"][CONFIG_KEY] = config.dumps()
    stamped["metadata"].setdefault("annotations", {})[CONFIG_GENERATION_ANNOTATION] = str(generation)
    return stamped


def service_account_name(route: LLMRoute, default: str) -> str:
    """The ServiceAccount the proxy pods run as: the route's own choice, else ``default`` (llmroute's)."""
    template = route.spec.proxy.template
    return (template.service_account_name if template else None) or default


def pod_api_access(configmap: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """The pod volume, the container's mount of it and the proxy arguments that watch ``configmap``."""
    volume = {
        "name": API_ACCESS_VOLUME,
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }
    mount = {"name": API_ACCESS_VOLUME, "mountPath": API_ACCESS_DIR, "readOnly": True}
    return volume, mount, [f"--watch-configmap={configmap}"]


def build_access(
    route: LLMRoute, *, name: str, configmap: str, labels: dict[str, str]
) -> list[dict[str, Any]]:
    """ServiceAccount (unless the route names its own), Role and RoleBinding, each called ``name``, that let
    the proxy pods read and watch ``configmap`` and nothing else."""
    namespace = route.metadata.namespace
    account = service_account_name(route, name)

    def meta() -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": dict(labels)}

    objects: list[dict[str, Any]] = []
    if account == name:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": meta(),
                "automountServiceAccountToken": False,
            }
        )
    rule = {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": [configmap],
        "verbs": list(WATCH_VERBS),
    }
    objects.append(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(), "rules": [rule]}
    )
    objects.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        }
    )
    return [owned(obj, route) for obj in objects]
