"""What the operator watches, and whether kopf's namespace scanning can work under its RBAC.

Given namespaces (``llmroute operator -n``), kopf lists and watches Namespace objects to resolve its
patterns and to notice namespaces created later. An identity that may not (a Role-only install, or a
ClusterRole without ``namespaces``) got a 403 that kopf retries through every
``networking.error_backoffs`` step (38 s with the operator's settings) before it fell back to the names
given - no route in any namespace was served meanwhile, and the log carried five errors. When every
namespace is an exact name, the listing adds nothing the names do not say, so the operator asks the API
server first (a SelfSubjectAccessReview, which every authenticated identity may create) and, when the
answer is no, turns kopf's scanning off: the named namespaces are watched at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

import urllib3
from kubernetes import client

log = logging.getLogger("llmroute.operator")

REVIEW_TIMEOUT_SECONDS = 10
GLOB_CHARACTERS = frozenset("!*?,")  # kopf reads a namespace with any of these as a pattern, not a name


def exact_names(namespaces: Collection[str]) -> bool:
    """Whether ``namespaces`` is a non-empty set of plain names, none a kopf pattern (``!``, ``*``, ``?``,
    ``,``)."""
    return bool(namespaces) and all(not (GLOB_CHARACTERS & set(ns)) for ns in namespaces)


def may_watch_namespaces(api: client.ApiClient) -> bool | None:
    """Whether this identity may list and watch Namespaces cluster-wide; ``None`` when the API server
    could not say (the review failed: kopf then tries as usual)."""
    authz = client.AuthorizationV1Api(api)
    try:
        for verb in ("list", "watch"):
            review = client.V1SelfSubjectAccessReview(
                spec=client.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=client.V1ResourceAttributes(verb=verb, resource="namespaces")
                )
            )
            answer = authz.create_self_subject_access_review(review, _request_timeout=REVIEW_TIMEOUT_SECONDS)
            if not answer.status.allowed:
                return False
    except (client.ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
        log.warning(
            "could not review the operator's access to namespaces (%s): kopf scans as usual",
            type(exc).__name__,
        )
        return None
    return True


def scanning_needed(namespaces: Collection[str], may_watch: Callable[[], bool | None]) -> bool:
    """Whether kopf should scan namespaces: always cluster-wide (no ``namespaces``) and for patterns; for
    exact names only when ``may_watch()`` is not ``False`` (it is not called otherwise)."""
    if not exact_names(namespaces):
        return True
    return may_watch() is not False
