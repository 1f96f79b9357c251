"""`render`: the objects and config the operator writes, built by pure functions (and `llmroute render`)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path

import yaml

from llmroute.cli.main import main
from llmroute.cli.render import steady_config
from llmroute.core.ratelimit import ShedState, plan
from llmroute.render import build_children
from llmroute.spec import LLMRoute
from llmroute.spec.proxyconfig import ProxyConfig

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "manifests" / "examples" / "full.yaml"
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # Wednesday 10:00 in New York: weekday peak


def _route() -> LLMRoute:
    doc = yaml.safe_load(FULL.read_text())
    doc["metadata"]["namespace"] = "ai"
    return LLMRoute.from_object(doc)


def _config(replicas: int) -> ProxyConfig:
    return steady_config(_route(), replicas, NOW)


def test_limits_are_divided_per_replica_with_the_global_figure_alongside() -> None:
    config = _config(4)
    enterprise = next(t for t in config.limits.tiers if t.name == "enterprise")
    assert enterprise.global_requests_per_minute == 12000
    assert enterprise.requests_per_minute == 3000
    assert config.limits.divisor == 4
    free = next(t for t in config.limits.tiers if t.name == "free")
    assert (free.global_requests_per_minute, free.requests_per_minute) == (300, 75)  # peak multiplier 0.5


def test_off_peak_schedule_doubles_everyone() -> None:
    route = _route()
    night = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # 22:00 in New York
    limits = plan(
        route.spec,
        now=night,
        current_replicas=1,
        desired_replicas=1,
        utilisation=None,
        at_max=False,
        state=ShedState(),
    )
    assert {lim.tier: lim.requests_per_minute for lim in limits.limits}["enterprise"] == 24000


def test_secrets_are_referenced_by_path_never_copied() -> None:
    config = _config(2)
    text = config.dumps()
    east = next(u for u in config.upstreams if u.name == "azure-east")
    assert east.api_key_file == "/etc/llmroute/secrets/azure-east/api-key"
    assert east.api_key_env == "LLMROUTE_API_KEY_AZURE_EAST"
    assert "sk-" not in text


def test_children_carry_labels_and_a_restricted_pod() -> None:
    route = _route()
    config = _config(3)
    by_kind = {o["kind"]: o for o in build_children(route, config, 3)}
    configmap, deployment, service = by_kind["ConfigMap"], by_kind["Deployment"], by_kind["Service"]
    pdb, policy = by_kind["PodDisruptionBudget"], by_kind["NetworkPolicy"]
    access = {"ServiceAccount", "Role", "RoleBinding"}
    owned = {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"}
    assert set(by_kind) == owned | access
    for obj in (configmap, deployment, service, pdb, policy):
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "assistant"
        assert obj["metadata"]["namespace"] == "ai"
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/etc/llmroute/config" in mounts  # a directory mount: kubelet's symlink swap reaches the proxy
    assert not any("subPath" in m for m in container["volumeMounts"])
    assert ProxyConfig.loads(configmap["data"]["config.json"]).hash == config.hash


def test_named_deployment_gets_only_the_configmap() -> None:
    doc = yaml.safe_load(FULL.read_text())
    doc["spec"]["proxy"].pop("template")
    doc["spec"]["proxy"].pop("networkPolicy")
    doc["spec"]["proxy"]["deploymentName"] = "existing-gateway"
    route = LLMRoute.from_object(doc)
    children = build_children(route, _config(1), 1)
    assert [c["kind"] for c in children] == ["ConfigMap"]


def test_render_command_prints_a_config_the_proxy_accepts() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["render", str(FULL), "--replicas", "2", "--config-only", "--at", "2026-03-04T03:00:00Z"])
    assert code == 0
    config = ProxyConfig.loads(out.getvalue())
    assert config.limits.divisor == 2 and config.hash == config.content_hash()


def test_render_command_prints_the_objects() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["render", str(FULL), "--namespace", "ai"]) == 0
    kinds = [d["kind"] for d in yaml.safe_load_all(out.getvalue())]
    access = ["ServiceAccount", "Role", "RoleBinding"]
    assert kinds == ["ConfigMap", *access, "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"]


def test_render_command_rejects_an_invalid_route(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: LLMRoute\nmetadata: {name: x}\nspec: {upstreams: []}\n")
    assert main(["render", str(bad)]) == 2  # a bad input file: as simulate --route and report --route-file


def test_the_service_exposes_the_api_alone_and_probes_and_scrapes_use_the_metrics_port() -> None:
    by_kind = {o["kind"]: o for o in build_children(_route(), _config(3), 3)}
    deployment, service = by_kind["Deployment"], by_kind["Service"]
    template = deployment["spec"]["template"]
    container = template["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "metrics": 9090}
    assert "--metrics-port=9090" in container["args"]
    assert container["readinessProbe"]["httpGet"]["port"] == "metrics"
    assert container["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert template["metadata"]["annotations"]["prometheus.io/port"] == "9090"
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_network_policy_admits_only_the_given_peers() -> None:
    by_kind = {o["kind"]: o for o in build_children(_route(), _config(3), 3)}
    policy = by_kind["NetworkPolicy"]
    assert policy["metadata"]["name"] == "assistant-proxy" and policy["spec"]["policyTypes"] == ["Ingress"]
    api, metrics = policy["spec"]["ingress"]
    assert api["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert api["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "assistant-app"}}}]
    assert metrics["ports"] == [{"protocol": "TCP", "port": 9090}]
    assert metrics["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= by_kind["Deployment"]["spec"]["template"]["metadata"]["labels"].items()


def test_defaults_of_the_network_policy() -> None:
    doc = yaml.safe_load(FULL.read_text())
    doc["spec"]["proxy"]["networkPolicy"] = {"enabled": True}
    *_, policy = build_children(LLMRoute.from_object(doc), _config(1), 1)
    api, metrics = policy["spec"]["ingress"]
    assert api["from"] == [{"podSelector": {}}]  # the route's own namespace
    assert metrics["from"] == [{"namespaceSelector": {}}]  # any namespace: Prometheus lives elsewhere
    doc["spec"]["proxy"]["networkPolicy"] = {"enabled": False}
    assert "NetworkPolicy" not in [
        c["kind"] for c in build_children(LLMRoute.from_object(doc), _config(1), 1)
    ]


def test_no_share_rounds_a_limit_to_zero_at_any_replica_count() -> None:
    """The free tier's per-client 20/min over 21 replicas was 0 per replica: every client refused."""
    for replicas in (1, 2, 7, 20, 21, 40, 1000):
        config = _config(replicas)
        for tier in config.limits.tiers:
            for share in (tier.requests_per_minute, tier.tokens_per_minute, tier.client_requests_per_minute,
                          tier.client_tokens_per_minute):  # fmt: skip
                assert share is None or share >= 1, (replicas, tier.name)
    free = next(t for t in _config(21).limits.tiers if t.name == "free")
    assert (free.global_client_requests_per_minute, free.client_requests_per_minute) == (10, 1)
    assert "never below 1 a minute" in _config(21).limits.semantics
