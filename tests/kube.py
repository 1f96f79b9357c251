"""Small Kubernetes helpers for tests (real API calls, no mocks)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION

T = TypeVar("T")


def eventually(
    fn: Callable[[], T], *, timeout: float = 30, interval: float = 0.2, what: str = "condition"
) -> T:
    """Call ``fn`` until it returns a truthy value without raising; return it (poll with a deadline)."""
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


def install_crd(api: client.ApiClient, path: Path) -> None:
    ext = client.ApiextensionsV1Api(api)
    body = yaml.safe_load(path.read_text())
    name = body["metadata"]["name"]
    try:
        existing = ext.read_custom_resource_definition(name)
        body["metadata"]["resourceVersion"] = existing.metadata.resource_version
        ext.replace_custom_resource_definition(name, body)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        ext.create_custom_resource_definition(body)

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

    eventually(established, what="CRD established")
    # the resource is served once discovery knows it
    custom = client.CustomObjectsApi(api)
    eventually(
        lambda: custom.list_cluster_custom_object(GROUP, VERSION, PLURAL) is not None, what="CRD served"
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
