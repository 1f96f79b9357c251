"""The chart's RBAC on a real apiserver, asked as the operator's ServiceAccount (``kubectl auth can-i
--as``): everything the operator does is allowed, and the cluster-scoped reads are only those kopf makes
(a cluster-wide install needs no namespace reads at all)."""

from __future__ import annotations

import subprocess

import pytest
from kubernetes import client

from llmroute_dev.binaries import ensure
from llmroute_dev.controlplane import ControlPlane
from tests.cluster.operator_env import OPERATOR_NAMESPACE, chart_rbac

pytestmark = pytest.mark.usefixtures("crd_installed")

# (verb, resource, namespaced): what the operator calls, in a route's namespace unless cluster-scoped
ALLOWED = [
    ("list", "llmroutes.llmroute.io", False),
    ("watch", "llmroutes.llmroute.io", False),
    ("patch", "llmroutes.llmroute.io/status", True),
    ("patch", "deployments.apps/scale", True),
    ("patch", "deployments.apps", True),
    ("patch", "services", True),
    ("patch", "configmaps", True),
    ("patch", "networkpolicies.networking.k8s.io", True),
    ("patch", "poddisruptionbudgets.policy", True),
    ("create", "rolebindings.rbac.authorization.k8s.io", True),
    ("create", "events.events.k8s.io", True),
    ("list", "horizontalpodautoscalers.autoscaling", True),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", False),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", False),
]
DENIED = [
    ("list", "namespaces", False),
    ("get", "namespaces", False),
    ("get", "customresourcedefinitions.apiextensions.k8s.io", False),
    ("get", "secrets", True),
    ("create", "events", True),  # core Events: kopf's posting is off, llmroute records events.k8s.io ones
    ("list", "pods", True),
    ("delete", "deployments.apps", True),
    ("delete", "llmroutes.llmroute.io", True),
    ("update", "deployments.apps", True),
    ("create", "clusterroles.rbac.authorization.k8s.io", False),
]


def _can_i(cp: ControlPlane, sa: str, verb: str, resource: str, namespaced: bool) -> bool:
    kubectl = ensure(("kubectl",))["kubectl"]
    argv = [str(kubectl), "--kubeconfig", str(cp.kubeconfig), "auth", "can-i", verb, resource]
    argv += ["--as", f"system:serviceaccount:{OPERATOR_NAMESPACE}:{sa}"]
    argv += ["--namespace", "team-a"] if namespaced else ["--all-namespaces"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() in ("yes", "no"), out
    return out.stdout.strip() == "yes"


def test_the_operator_may_do_what_it_does_and_no_more(
    control_plane: ControlPlane, api_client: client.ApiClient
) -> None:
    sa = chart_rbac(api_client)
    refused = [case for case in ALLOWED if not _can_i(control_plane, sa, *case)]
    assert refused == [], "the operator needs these"
    granted = [case for case in DENIED if _can_i(control_plane, sa, *case)]
    assert granted == [], "the operator never does these"
