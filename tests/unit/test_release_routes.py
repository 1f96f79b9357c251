"""`llmroute release-routes` (the chart's pre-delete hook) when the cluster has no LLMRoute resource: the
uninstall goes on with nothing to release instead of failing the hook (and with it `helm uninstall`)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from llmroute.k8s import release


class _NoLLMRouteResource:
    """The apiserver's answer to a list of a resource it does not serve (the CRD is gone)."""

    def __init__(self, _api: Any) -> None:
        pass

    def list_cluster_custom_object(self, *_: Any, **__: Any) -> dict[str, Any]:
        raise client.ApiException(status=404, reason="Not Found")

    def list_namespaced_custom_object(self, *_: Any, **__: Any) -> dict[str, Any]:
        raise client.ApiException(status=404, reason="Not Found")


class _Forbidden(_NoLLMRouteResource):
    def list_cluster_custom_object(self, *_: Any, **__: Any) -> dict[str, Any]:
        raise client.ApiException(status=403, reason="Forbidden")


@pytest.mark.parametrize("namespaces", [None, ["team-a", "team-b"]])
def test_no_llmroute_resource_releases_nothing(
    monkeypatch: pytest.MonkeyPatch, namespaces: list[str] | None
) -> None:
    monkeypatch.setattr(client, "CustomObjectsApi", _NoLLMRouteResource)
    assert release.release_routes(client.ApiClient(), namespaces) == []


def test_other_errors_still_fail_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "CustomObjectsApi", _Forbidden)
    with pytest.raises(client.ApiException) as failed:
        release.release_routes(client.ApiClient(), None)
    assert failed.value.status == 403
