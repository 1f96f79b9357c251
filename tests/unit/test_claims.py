"""Which of several LLMRoutes naming one Deployment scales it."""

from __future__ import annotations

from typing import Any

from llmroute.controller.claims import Claim, claim, rivals, scale_target


def _route(name: str, created: str, deployment: str | None = None) -> dict[str, Any]:
    proxy = {"deploymentName": deployment} if deployment else {"minReplicas": 1}
    meta = {"name": name, "namespace": "ns", "creationTimestamp": created}
    return {"metadata": meta, "spec": {"proxy": proxy}}


def test_the_deployment_a_route_scales() -> None:
    assert scale_target(_route("chat", "t")) == ("ns", "chat-proxy")
    assert scale_target(_route("chat", "t", "gateway")) == ("ns", "gateway")
    assert scale_target({"metadata": {"name": "bare"}}) == ("", "bare-proxy")


def test_the_oldest_route_holds_a_named_deployment_whatever_the_names() -> None:
    old, new = _route("zeta", "2026-01-01T00:00:00Z", "gw"), _route("alpha", "2026-02-01T00:00:00Z", "gw")
    claims = [claim(new), claim(old)]
    assert rivals(claims, "zeta") == []
    assert rivals(claims, "alpha") == ["LLMRoute/zeta"]


def test_the_route_that_created_the_deployment_holds_it_against_older_ones() -> None:
    creator = _route("chat", "2026-03-01T00:00:00Z")
    older = _route("aaa", "2026-01-01T00:00:00Z", "chat-proxy")
    claims = [claim(older), claim(creator)]
    assert rivals(claims, "chat") == []
    assert rivals(claims, "aaa") == ["LLMRoute/chat"]


def test_same_second_goes_by_name_and_a_lone_route_has_no_rival() -> None:
    a, b = _route("a", "2026-01-01T00:00:00Z", "gw"), _route("b", "2026-01-01T00:00:00Z", "gw")
    assert rivals([claim(b), claim(a)], "b") == ["LLMRoute/a"]
    assert rivals([claim(a)], "a") == []
    assert rivals([], "a") == []
    assert claim(a) == Claim(True, "2026-01-01T00:00:00Z", "a")
