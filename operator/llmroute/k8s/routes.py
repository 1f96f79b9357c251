"""The LLMRoute objects themselves: the one write the operator makes to them, a merge patch of the
status subresource."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION

MERGE = "application/merge-patch+json"


@dataclass(frozen=True)
class RouteStatusWriter:
    """Patches ``status`` of LLMRoutes through ``api`` (raises ``kubernetes.client.ApiException``)."""

    api: client.ApiClient

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge ``status`` into the route's status. Explicit ``None`` values remove fields (a merge patch
        must say what is no longer known, e.g. a lost load figure)."""
        client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": status}, _content_type=MERGE
        )
