"""Start the whole local environment in one call: control plane (+ the LLMRoute CRD) and Prometheus."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llmroute_dev import REPO_ROOT
from llmroute_dev.controlplane import ControlPlane
from llmroute_dev.prometheus import Prometheus, Series

CRD_PATH = REPO_ROOT / "crds" / "llmroute.io_llmroutes.yaml"


@dataclass
class DevEnv:
    control_plane: ControlPlane
    prometheus: Prometheus


def install_crd(kubeconfig: Path, crd_path: Path = CRD_PATH) -> None:
    """Create or update the LLMRoute CRD and wait until it is served."""
    import time

    import yaml
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig))
    ext = client.ApiextensionsV1Api(api)
    body = yaml.safe_load(crd_path.read_text())
    name = body["metadata"]["name"]
    try:
        existing = ext.read_custom_resource_definition(name)
        body["metadata"]["resourceVersion"] = existing.metadata.resource_version
        ext.replace_custom_resource_definition(name, body)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        ext.create_custom_resource_definition(body)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(name)
        if any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or []):
            return
        time.sleep(0.1)
    raise TimeoutError(f"CRD {name} not established")


@contextlib.contextmanager
def dev_env(
    workdir: Path, *, backfill: tuple[Series, ...] = (), scrape_interval: str = "5s"
) -> Iterator[DevEnv]:
    """Run the control plane and Prometheus until the block exits; always stop both."""
    cp = ControlPlane(workdir / "controlplane")
    prom = Prometheus(workdir / "prometheus", scrape_interval=scrape_interval, backfill=backfill)
    try:
        cp.start()
        install_crd(cp.kubeconfig)
        prom.start()
        yield DevEnv(cp, prom)
    finally:
        prom.stop()
        cp.stop()
