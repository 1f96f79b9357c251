"""What a failed reconcile means, from an explicit table of API status codes: the condition reason it
is reported under, whether retrying soon can help, and the API's own message.

Reasons: ``Forbidden`` (403: the operator's RBAC does not allow the call), ``Rejected`` (400/422: the API
refused what was sent), ``NotOwned`` (a child's name is taken by an object the route does not control,
:mod:`llmroute.k8s.ownership`), ``ReconcileFailed`` for everything else. Transient (retried with a short
backoff): conflicts, throttling, timeouts, server errors and connection failures, and a name held by an
earlier route of the same name. Permanent (retried at the route's interval until a person fixes the
cause): the rest, including any exception that is not an API error (a
bug in llmroute).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import urllib3
from kubernetes import client

from llmroute.k8s.ownership import NotOwnedError

FailureReason = Literal["Forbidden", "Rejected", "NotOwned", "ReconcileFailed"]
# what the Kubernetes client raises when it cannot reach the API (refused, reset, timed out)
API_UNREACHABLE = (OSError, urllib3.exceptions.HTTPError)


@dataclass(frozen=True)
class Failure:
    """A reconcile failure: ``reason`` (a condition reason), ``transient`` (retry soon), ``message``."""

    reason: FailureReason
    transient: bool
    message: str


# HTTP status of the Kubernetes API -> (reason, transient). Not listed: 5xx are transient, other codes
# permanent, both ReconcileFailed.
API_STATUS: dict[int, tuple[FailureReason, bool]] = {
    0: ("ReconcileFailed", True),  # no HTTP status: the client could not reach the API
    400: ("Rejected", False),
    401: ("ReconcileFailed", True),  # an expired token: the client reloads it
    403: ("Forbidden", False),
    404: ("ReconcileFailed", True),  # deleted between read and write: the next cycle recreates it
    408: ("ReconcileFailed", True),
    409: ("ReconcileFailed", True),  # conflict: read again and retry
    410: ("ReconcileFailed", True),
    422: ("Rejected", False),
    429: ("ReconcileFailed", True),  # throttled by API priority and fairness
}


MAX_RETRY_SECONDS = 60.0  # the longest wait between retries of a transient failure


def retry_seconds(failures: int) -> float:
    """The wait before retrying after ``failures`` transient failures in a row: ``2^failures`` seconds, at
    most :data:`MAX_RETRY_SECONDS` (before jitter). The exponent stops at 6: the count of a failure that
    lasts a day keeps growing, and ``2.0 ** 1024`` raises ``OverflowError`` (after some 17 hours of
    failures a minute apart the route's loop would have ended with it)."""
    return min(MAX_RETRY_SECONDS, 2.0 ** min(max(0, failures), 6))


def classify(exc: BaseException) -> Failure:
    """The :class:`Failure` that ``exc`` (raised by a reconcile) stands for."""
    if isinstance(exc, client.ApiException):
        status = int(exc.status or 0)
        reason, transient = API_STATUS.get(status, ("ReconcileFailed", status >= 500))
        return Failure(reason, transient, f"{status} {api_message(exc)}".strip())
    if isinstance(exc, NotOwnedError):
        return Failure("NotOwned", exc.transient, str(exc))
    if isinstance(exc, API_UNREACHABLE):
        return Failure("ReconcileFailed", True, f"Kubernetes API unreachable: {exc}")
    return Failure("ReconcileFailed", False, f"{type(exc).__name__}: {exc}")


def api_message(exc: client.ApiException) -> str:
    """The API's own message (``Status.message``) from the response body, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(exc.reason or "")
