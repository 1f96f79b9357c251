"""Build the proxy's Kubernetes objects (Deployment, Service, ConfigMap, PodDisruptionBudget, optional
NetworkPolicy from :mod:`llmroute.render.network`) as plain dicts.

The proxy listens on two ports: ``http`` (the API, the only port of the Service) and ``metrics``
(``/metrics``, ``/healthz``, ``/readyz``: the Prometheus scrape annotations and the probes point there).

Pods run under the ``restricted`` Pod Security Standard: non-root, read-only root filesystem, no
privilege escalation, all capabilities dropped, RuntimeDefault seccomp, no automounted ServiceAccount
token (only the projected one the config watch needs, see :mod:`llmroute.render.delivery`).
Secrets are mounted as files; the ConfigMap is mounted as a directory (never ``subPath``) so kubelet's
atomic symlink swap reaches the proxy's hot reload.
"""

from __future__ import annotations

from typing import Any

from llmroute import __version__
from llmroute.render.config import CLIENT_KEYS_DIR, CONFIG_DIR, SECRETS_DIR
from llmroute.render.delivery import build_access, pod_api_access, service_account_name
from llmroute.render.disruption import build_pdb
from llmroute.render.network import network_policy
from llmroute.render.owner import owned
from llmroute.render.placement import container_env, pod_annotations, pod_placement
from llmroute.spec.proxyconfig import CONFIG_KEY, ProxyConfig
from llmroute.spec.route import LLMRoute
from llmroute.spec.upstream import DEFAULT_IMAGE, ProxyTemplate

CONFIG_HASH_ANNOTATION = "llmroute.io/config-hash"
# A stopping proxy keeps serving until the Service no longer sends it new connections (preStop), then
# serves what still arrives on open connections with ``Connection: close`` for a few seconds (drain).
PRESTOP_SECONDS = 5
DRAIN_SECONDS = 3


def child_names(route: LLMRoute) -> dict[str, str]:
    base = route.metadata.name
    deployment = route.spec.proxy.deployment_name or f"{base}-proxy"
    return {
        "deployment": deployment,
        "service": f"{base}-proxy",
        "configmap": f"{base}-proxy-config",
        "pdb": f"{base}-proxy",
        "access": f"{base}-proxy",  # ServiceAccount, Role and RoleBinding of the config watch
        "networkpolicy": f"{base}-proxy",
    }


def labels(route: LLMRoute) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "llmroute-proxy",
        "app.kubernetes.io/instance": route.metadata.name,
        "app.kubernetes.io/component": "proxy",
        "app.kubernetes.io/part-of": "llmroute",
        "app.kubernetes.io/managed-by": "llmroute",
    }


def _selector(route: LLMRoute) -> dict[str, str]:
    full = labels(route)
    return {k: full[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}


def build_configmap(route: LLMRoute, config: ProxyConfig) -> dict[str, Any]:
    hashed = config.with_hash()
    configmap: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": child_names(route)["configmap"],
            "namespace": route.metadata.namespace,
            "labels": labels(route),
            "annotations": {CONFIG_HASH_ANNOTATION: hashed.hash},
        },
        "data": {CONFIG_KEY: hashed.dumps()},
    }
    return owned(configmap, route)


def _secret_volume(name: str, refs: list[tuple[str, str]]) -> dict[str, Any]:
    by_secret: dict[str, list[str]] = {}
    for secret, key in refs:
        by_secret.setdefault(secret, [])
        if key not in by_secret[secret]:
            by_secret[secret].append(key)
    sources = [
        {"secret": {"name": secret, "items": [{"key": k, "path": f"{secret}/{k}"} for k in keys]}}
        for secret, keys in sorted(by_secret.items())
    ]
    return {"name": name, "projected": {"sources": sources, "defaultMode": 0o440}}


def build_deployment(route: LLMRoute, replicas: int, proxy_image: str = DEFAULT_IMAGE) -> dict[str, Any]:
    """The proxy Deployment llmroute creates when the route names no existing one; its container runs
    ``spec.proxy.template.image``, else ``proxy_image`` (the operator's, ``LLMROUTE_PROXY_IMAGE``)."""
    template = route.spec.proxy.template or ProxyTemplate()
    names = child_names(route)
    upstream_refs = [
        (u.api_key_secret_ref.name, u.api_key_secret_ref.key)
        for u in route.spec.upstreams
        if u.api_key_secret_ref
    ]
    store_ref = route.spec.rate_limits.store.password_secret_ref
    if store_ref:
        upstream_refs.append((store_ref.name, store_ref.key))
    log = route.spec.access_log
    if log.enabled and log.hash_key_secret_ref:
        upstream_refs.append((log.hash_key_secret_ref.name, log.hash_key_secret_ref.key))
    client_refs = [
        (t.api_keys_secret_ref.name, t.api_keys_secret_ref.key)
        for t in route.spec.rate_limits.tiers
        if t.api_keys_secret_ref
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": names["configmap"]}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if upstream_refs:
        volumes.append(_secret_volume("upstream-keys", upstream_refs))
        mounts.append({"name": "upstream-keys", "mountPath": SECRETS_DIR, "readOnly": True})
    if client_refs:
        volumes.append(_secret_volume("client-keys", client_refs))
        mounts.append({"name": "client-keys", "mountPath": CLIENT_KEYS_DIR, "readOnly": True})
    api_volume, api_mount, watch_args = pod_api_access(names["configmap"])
    volumes.append(api_volume)
    mounts.append(api_mount)
    probe = {"httpGet": {"path": "/readyz", "port": "metrics"}, "periodSeconds": 5, "failureThreshold": 2}
    args = ["proxy", f"--config={CONFIG_DIR}/{CONFIG_KEY}", "--host=0.0.0.0", f"--port={template.port}"]
    container: dict[str, Any] = {
        "name": "proxy",
        "image": template.image or proxy_image,
        "imagePullPolicy": template.image_pull_policy,
        "args": [
            *args,
            f"--metrics-port={template.metrics_port}",
            f"--drain-seconds={DRAIN_SECONDS}",
            *watch_args,
        ],
        "ports": [
            {"name": "http", "containerPort": template.port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": template.metrics_port, "protocol": "TCP"},
        ],
        "readinessProbe": probe,
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}},
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "metrics"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": template.resources.to_wire(),
        "volumeMounts": mounts,
        **({"env": env} if (env := container_env(template)) else {}),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": int(route.spec.proxy.timeouts.total_seconds) + 5,
        "containers": [container],
        "volumes": volumes,
        **pod_placement(template, _selector(route)),
    }
    pod_spec["serviceAccountName"] = service_account_name(route, names["access"])
    pod_labels = labels(route) | {"app.kubernetes.io/version": __version__}
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": names["deployment"],
            "namespace": route.metadata.namespace,
            "labels": labels(route),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _selector(route)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": pod_annotations(
                        template,
                        {
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": str(template.metrics_port),
                            "prometheus.io/path": "/metrics",
                        },
                    ),
                },
                "spec": pod_spec,
            },
        },
    }
    return owned(deployment, route)


def build_service(route: LLMRoute) -> dict[str, Any]:
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": child_names(route)["service"],
            "namespace": route.metadata.namespace,
            "labels": labels(route),
        },
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(route),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return owned(service, route)


def build_disruption_budget(route: LLMRoute) -> dict[str, Any]:
    """The proxy's PodDisruptionBudget (:mod:`llmroute.render.disruption`)."""
    template = route.spec.proxy.template or ProxyTemplate()
    budget = template.pod_disruption_budget
    return build_pdb(route, child_names(route)["pdb"], labels(route), _selector(route), budget)


def build_route_access(route: LLMRoute) -> list[dict[str, Any]]:
    """The ServiceAccount, Role and RoleBinding that let the route's proxies watch their ConfigMap."""
    names = child_names(route)
    return build_access(route, name=names["access"], configmap=names["configmap"], labels=labels(route))


def build_network_policy(route: LLMRoute) -> dict[str, Any]:
    """The proxy's NetworkPolicy (:mod:`llmroute.render.network`)."""
    return network_policy(route, child_names(route)["networkpolicy"], labels(route), _selector(route))


def build_children(
    route: LLMRoute, config: ProxyConfig, replicas: int, proxy_image: str = DEFAULT_IMAGE
) -> list[dict[str, Any]]:
    """Everything llmroute writes for a route: the ConfigMap always; the config watch's access,
    Deployment, Service and PodDisruptionBudget when it owns the proxy (no ``deploymentName``), and then
    the NetworkPolicy if ``proxy.networkPolicy.enabled``."""
    children = [build_configmap(route, config)]
    if route.spec.proxy.deployment_name is None:
        children += [
            *build_route_access(route),
            build_deployment(route, replicas, proxy_image),
            build_service(route),
        ]
        children.append(build_disruption_budget(route))
        if route.spec.proxy.network_policy.enabled:
            children.append(build_network_policy(route))
    return children
