"""Build the Kubernetes API client: in-cluster credentials when running in a pod, else kubeconfig."""

from __future__ import annotations

import os

from kubernetes import client, config


def api_client() -> client.ApiClient:
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config()
        return client.ApiClient()
    return config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: conflicts, throttling, server errors, and connection failures."""
    if isinstance(exc, client.ApiException):
        return exc.status in (0, 409, 429) or exc.status >= 500
    return isinstance(exc, OSError) or type(exc).__module__.startswith("urllib3")
