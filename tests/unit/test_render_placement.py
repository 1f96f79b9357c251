"""The proxy pods' placement and policy fields reach the Deployment in their Kubernetes shapes; topology
spread across nodes and zones by default; the PodDisruptionBudget rendered with the children."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llmroute.k8s.workload import null_removed
from llmroute.render import build_deployment, build_disruption_budget
from llmroute.render.placement import SPREAD_KEYS
from llmroute.spec import LLMRoute
from tests.cases import route as route_object

SELECTOR = {"app.kubernetes.io/name": "llmroute-proxy", "app.kubernetes.io/instance": "r"}
EVERY_FIELD: dict[str, Any] = {
    "nodeSelector": {"pool": "gateways"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                        ]
                    }
                ]
            }
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 50,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app": "batch"}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        },
    },
    "priorityClassName": "gateway-critical",
    "imagePullSecrets": [{"name": "registry"}],
    "env": [
        {"name": "TZ", "value": "UTC"},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "LLMROUTE_API_KEY_EXTRA", "valueFrom": {"secretKeyRef": {"name": "extra", "key": "k"}}},
    ],
    "podAnnotations": {"team": "platform", "prometheus.io/scrape": "false"},
}


def _route(**template: Any) -> LLMRoute:
    return LLMRoute.from_object(route_object(proxy={"template": template}) | {"metadata": {"name": "r"}})


def _pod(route: LLMRoute) -> dict[str, Any]:
    spec: dict[str, Any] = build_deployment(route, 2)["spec"]["template"]
    return spec


def test_every_placement_field_reaches_the_pod_in_its_kubernetes_shape() -> None:
    pod = _pod(_route(**EVERY_FIELD))
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"):
        assert spec[key] == EVERY_FIELD[key], key
    assert container["env"] == EVERY_FIELD["env"]
    assert pod["metadata"]["annotations"]["team"] == "platform"
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "false"  # the route's value wins
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9090"  # the metrics port, not the API


def test_unset_fields_leave_the_pod_as_before() -> None:
    pod = _pod(_route())
    assert not {"nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"} & set(
        pod["spec"]
    )
    assert "env" not in pod["spec"]["containers"][0]


def test_default_spread_over_nodes_and_zones_never_blocks_scheduling() -> None:
    spread = _pod(_route())["spec"]["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == list(SPREAD_KEYS)
    for constraint in spread:
        assert constraint["maxSkew"] == 1
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
        assert constraint["labelSelector"] == {"matchLabels": SELECTOR}
        assert constraint["matchLabelKeys"] == ["pod-template-hash"]


def test_own_spread_replaces_the_default_and_an_empty_list_switches_it_off() -> None:
    own = {"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}
    spread = _pod(_route(topologySpreadConstraints=[own]))["spec"]["topologySpreadConstraints"]
    assert spread == [{"labelSelector": {"matchLabels": SELECTOR}, **own}]
    assert "topologySpreadConstraints" not in _pod(_route(topologySpreadConstraints=[]))["spec"]


def test_disruption_budget_defaults_to_one_unavailable_and_follows_the_route() -> None:
    default = build_disruption_budget(_route())
    assert default["apiVersion"] == "policy/v1" and default["kind"] == "PodDisruptionBudget"
    assert default["metadata"]["name"] == "r-proxy"
    assert default["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": SELECTOR},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    half = build_disruption_budget(_route(podDisruptionBudget={"minAvailable": "50%"}))["spec"]
    assert half["minAvailable"] == "50%" and "maxUnavailable" not in half
    two = build_disruption_budget(_route(podDisruptionBudget={"maxUnavailable": 2}))["spec"]
    assert two["maxUnavailable"] == 2


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"podDisruptionBudget": {"minAvailable": -1}}, "minAvailable is a count or a percentage"),
        ({"tolerations": [{"operator": "Exists", "value": "x"}]}, "operator Exists has no value"),
        ({"env": [{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}, "not both"),
        ({"affinity": {"nodeAffinity": {"bogus": {}}}}, "bogus"),
    ],
)
def test_bad_placement_is_refused_naming_the_problem(template: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _route(**template)


def test_unsetting_a_field_in_the_route_removes_it_from_the_deployment() -> None:
    have = _pod(_route(**EVERY_FIELD))
    have["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = "2026-01-01T00:00:00Z"
    want = _pod(_route())
    null_removed(want, have)
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"):
        assert want["spec"][key] is None, key
    assert want["spec"]["topologySpreadConstraints"] == _pod(_route())["spec"]["topologySpreadConstraints"]
    assert want["metadata"]["annotations"]["team"] is None
    assert want["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert "kubectl.kubernetes.io/restartedAt" not in want["metadata"]["annotations"]
