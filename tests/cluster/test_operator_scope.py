"""An operator given named namespaces (``llmroute operator -n``) under RBAC that does not let it list
Namespaces (here the chart's cluster-wide rules) watches them at once: it asks the API server what it may
do instead of letting kopf retry a forbidden namespace listing through every back-off step (38 s, five
errors in the log, no route served meanwhile)."""

from __future__ import annotations

from kubernetes import client

from llmroute.testing.load_emitter import LoadEmitter
from tests.cluster.conftest import StartOperator
from tests.cluster.operator_env import route_object, wait_reconciled
from tests.kube import create_route


def test_named_namespaces_are_watched_without_retrying_a_forbidden_namespace_list(
    api_client: client.ApiClient, namespace: str, start_operator: StartOperator, emitter: LoadEmitter
) -> None:
    op = start_operator(namespace)
    create_route(api_client, namespace, route_object("chat"))
    wait_reconciled(api_client, namespace, "chat")
    log = (op.workdir / "logs" / "operator.log").read_text()
    assert f"may not list and watch namespaces: watching {namespace} as named" in log
    assert "Not enough permissions" not in log
    assert "Request attempt" not in log, "a request was retried"
