"""Typed, validated models of the LLMRoute API (spec and status) and of the rendered proxy config."""

from llmroute.spec.base import Model, SecretKeyRef, TimeWindow
from llmroute.spec.ratelimit import RateLimits, Tier
from llmroute.spec.route import PAUSE_ANNOTATION, LLMRoute, LLMRouteSpec
from llmroute.spec.scaling import Scaling
from llmroute.spec.upstream import Failover, ProxySpec, Upstream

__all__ = [
    "PAUSE_ANNOTATION",
    "Failover",
    "LLMRoute",
    "LLMRouteSpec",
    "Model",
    "ProxySpec",
    "RateLimits",
    "Scaling",
    "SecretKeyRef",
    "Tier",
    "TimeWindow",
    "Upstream",
]
