"""Start everything the demo runs, each part registered on an ``ExitStack`` so that it is always stopped.

Order: control plane and Prometheus (``dev_env``), the demo namespace, two fake upstream endpoints
(processes), the Secrets and the LLMRoute, the local pod runner, and the operator
(``python -m llmroute operator -n NAMESPACE`` with the admin kubeconfig and demo-speed settings).
"""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from llmroute import GROUP, PLURAL, VERSION
from llmroute_dev.demo import route as demoroute
from llmroute_dev.podrunner import PodRunner
from llmroute_dev.procs import Process, free_port, wait_for
from llmroute_dev.session import DevEnv, dev_env

NAMESPACE = "llmroute-demo"
UPSTREAM_LATENCY = {"primary": 0.08, "backup": 0.12}  # seconds the fake endpoints take to answer
OPERATOR_ENV = {
    "LLMROUTE_METRICS_INTERVAL_SECONDS": "2",
    "LLMROUTE_RATE_WINDOW": "15s",
    "LLMROUTE_SCRAPE_INTERVAL_SECONDS": "1",  # the demo's Prometheus scrapes every second
}


@dataclass
class Endpoint:
    """A fake OpenAI-compatible upstream process."""

    name: str
    process: Process
    base: str  # http://127.0.0.1:PORT

    @property
    def url(self) -> str:
        return f"{self.base}/v1"

    def answers(self) -> bool:
        self.process.check_alive()
        with urllib.request.urlopen(f"{self.url}/models", timeout=2) as resp:
            return bool(resp.status == 200)


@dataclass
class System:
    env: DevEnv
    api: client.ApiClient
    endpoints: dict[str, Endpoint]
    demo: demoroute.DemoRoute
    runner: PodRunner
    operator: Process

    @property
    def processes(self) -> list[Process]:
        """The long-running children whose death ends the demo (proxies are restarted instead)."""
        return [self.operator, *(e.process for e in self.endpoints.values())]


def _endpoint(name: str, latency: float, workdir: Path) -> Endpoint:
    port = free_port()
    argv = [sys.executable, "-m", "llmroute.testing.fake_upstream", "--port", str(port)]
    argv += ["--name", name, "--latency", str(latency)]
    process = Process(f"upstream-{name}", argv, workdir / "upstreams" / f"{name}.log")
    return Endpoint(name, process, f"http://127.0.0.1:{port}")


def operator_process(kubeconfig: Path, prometheus_url: str, workdir: Path) -> Process:
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), LLMROUTE_PROMETHEUS_URL=prometheus_url)
    env |= OPERATOR_ENV | {"LLMROUTE_METRICS_PORT": str(free_port())}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    liveness = f"--liveness=http://127.0.0.1:{free_port()}/healthz"
    argv = [sys.executable, "-m", "llmroute", "operator", "-n", NAMESPACE, liveness]
    return Process("operator", argv, workdir / "operator" / "operator.log", env=env)


def start(workdir: Path, stack: contextlib.ExitStack) -> System:
    """Start every part (stopped by ``stack``); returns once the route is applied and the operator runs."""
    env = stack.enter_context(dev_env(workdir, scrape_interval="1s"))
    api = config.new_client_from_config(config_file=str(env.control_plane.kubeconfig))
    stack.callback(api.close)
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))

    endpoints = {name: _endpoint(name, latency, workdir) for name, latency in UPSTREAM_LATENCY.items()}
    for endpoint in endpoints.values():
        stack.callback(endpoint.process.stop)
        endpoint.process.start()
    for endpoint in endpoints.values():
        wait_for(endpoint.answers, timeout=30, what=f"the {endpoint.name} endpoint")

    demo = demoroute.build(NAMESPACE, {name: e.url for name, e in endpoints.items()})
    for secret in demo.secrets:
        core.create_namespaced_secret(NAMESPACE, secret)
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, demo.route)

    runner = PodRunner(
        api,
        NAMESPACE,
        f"{demo.name}-proxy",
        workdir / "pods",
        env.prometheus,
        on_event=lambda message: None,
    )
    stack.callback(runner.stop)
    runner.start()
    operator = operator_process(env.control_plane.kubeconfig, env.prometheus.url, workdir)
    stack.callback(operator.stop)
    operator.start()
    return System(env, api, endpoints, demo, runner, operator)
