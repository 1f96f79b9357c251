"""The status-code table that decides how a failed reconcile is reported and retried."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes import client

from llmroute.k8s.failures import MAX_RETRY_SECONDS, classify, retry_seconds


def _api_error(status: int, message: str | None = None) -> client.ApiException:
    exc = client.ApiException(status=status, reason="Reason")
    if message is not None:
        exc.body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": status})
    return exc


@pytest.mark.parametrize(
    ("status", "reason", "transient"),
    [
        (403, "Forbidden", False),
        (400, "Rejected", False),
        (422, "Rejected", False),
        (409, "ReconcileFailed", True),
        (429, "ReconcileFailed", True),
        (404, "ReconcileFailed", True),
        (500, "ReconcileFailed", True),
        (503, "ReconcileFailed", True),
        (0, "ReconcileFailed", True),
        (405, "ReconcileFailed", False),
        (413, "ReconcileFailed", False),
    ],
)
def test_api_status_codes(status: int, reason: str, transient: bool) -> None:
    failure = classify(_api_error(status, "the API's words"))
    assert (failure.reason, failure.transient) == (reason, transient)
    assert failure.message == f"{status} the API's words"


def test_message_falls_back_to_the_http_reason() -> None:
    assert classify(_api_error(403)).message == "403 Reason"


def test_connection_failures_are_transient_and_bugs_are_not() -> None:
    refused = classify(urllib3.exceptions.MaxRetryError(None, "/x", "refused"))  # type: ignore[arg-type]
    assert (refused.reason, refused.transient) == ("ReconcileFailed", True)
    assert classify(ConnectionResetError("reset")).transient
    bug = classify(KeyError("spec"))
    assert (bug.reason, bug.transient) == ("ReconcileFailed", False)
    assert bug.message == "KeyError: 'spec'"


def test_the_retry_wait_doubles_up_to_a_minute_and_never_overflows() -> None:
    """A transient failure that lasts a day (an API server or webhook down) fails every minute: after
    1,024 failures in a row the wait ``2.0 ** failures`` raised OverflowError and ended the route's loop."""
    assert [retry_seconds(n) for n in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert retry_seconds(1_100) == retry_seconds(10**9) == MAX_RETRY_SECONDS
