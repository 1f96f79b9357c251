"""Pure ``build_*`` functions: the proxy config and the Deployment / Service / ConfigMap / PDB objects the
operator writes (and ``llmroute render`` prints). No I/O, no clock."""

from llmroute.render.config import build_proxy_config
from llmroute.render.workload import (
    build_children,
    build_configmap,
    build_deployment,
    build_disruption_budget,
    build_network_policy,
    build_service,
    child_names,
    labels,
)

__all__ = [
    "build_children",
    "build_configmap",
    "build_deployment",
    "build_disruption_budget",
    "build_network_policy",
    "build_proxy_config",
    "build_service",
    "child_names",
    "labels",
]
