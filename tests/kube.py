"""Small Kubernetes helpers for tests (real API calls, no mocks)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION

T = TypeVar("T")


def eventually(
    fn: Callable[[], T | None], *, timeout: float = 30, interval: float = 0.2, what: str = "condition"
) -> T:
    """Call ``fn`` until it returns a truthy value without raising; return it (poll with a deadline).
    ``fn`` may return ``None`` for "not yet": the value returned is then never ``None``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except (AssertionError, client.ApiException) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last: {last!r}")
        time.sleep(interval)


def deployment(name: str, replicas: int = 2, image: str = "example.invalid/x") -> client.V1Deployment:
    """A plain Deployment (its pods stay Pending here: there is no scheduler or kubelet)."""
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image=image)]),
            ),
        ),
    )


def create_route(api: client.ApiClient, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api)
    result: dict[str, Any] = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, obj, field_validation="Strict"
    )
    return result


def raw_get(api: client.ApiClient, path: str, accept: str = "application/json") -> Any:
    """GET ``path`` with the client's credentials and return the decoded JSON (e.g. for Table output)."""
    import json

    method, url, headers, body, _ = api.param_serialize(
        "GET", path, header_params={"Accept": accept}, auth_settings=["BearerToken"]
    )
    response = api.call_api(method, url, header_params=headers, body=body)
    response.read()
    return json.loads(response.data)
