"""What the config watch costs the proxy in memory (resident set size).

Two ``llmroute proxy`` processes serve the same config file; one also watches its ConfigMap through a
real kube-apiserver (the development control plane on loopback) with a ServiceAccount token limited by
the route's Role, exactly as in a pod. After both are ready, the ConfigMap is rewritten ``--updates``
times (each a new generation the watching proxy applies); VmRSS of both is sampled before and after.

    flock /tmp/llmroute-heavy.lock .venv/bin/python -m bench.proxy_watch_memory [--updates 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client, config

from bench.proxy_common import emit, rss_kib
from llmroute.k8s.access import apply_access
from llmroute.render.workload import build_configmap, build_route_access
from llmroute.spec.proxyconfig import CONFIG_KEY, ProxyConfig
from llmroute.spec.route import LLMRoute
from llmroute_dev.controlplane import ControlPlane
from llmroute_dev.procs import Process, free_port, wait_for

NAMESPACE = "bench"


def _route() -> LLMRoute:
    upstream = {"name": "a", "url": "http://127.0.0.1:9/v1", "model": "m"}
    spec = {"upstreams": [upstream], "rateLimits": {"identity": {"type": "Unauthenticated"}}}
    doc = {"metadata": {"name": "mem", "namespace": NAMESPACE}, "spec": spec}
    return LLMRoute.from_object({"apiVersion": "llmroute.io/v1alpha1", "kind": "LLMRoute", **doc})


def _config(route: LLMRoute, generation: int) -> dict[str, Any]:
    body = {
        "route": {"namespace": NAMESPACE, "name": route.metadata.name},
        "upstreams": [{"name": "a", "url": "http://127.0.0.1:9/v1", "model": "m"}],
        "admission": {"maxConcurrency": 100 + generation},
        "generation": generation,
        "limits": {"identity": "Unauthenticated"},
    }
    return build_configmap(route, ProxyConfig.model_validate(body))


def _readyz(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


def _sample(pid: int) -> int:
    samples = []
    for _ in range(5):
        samples.append(rss_kib(pid))
        time.sleep(0.2)
    return max(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmroute-watch-mem-") as tmp:
        work = Path(tmp)
        cp = ControlPlane(work / "cp").start()
        procs: list[Process] = []
        try:
            api = config.new_client_from_config(config_file=str(cp.kubeconfig))
            core = client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": NAMESPACE}})
            route = _route()
            core.create_namespaced_config_map(NAMESPACE, _config(route, 1))
            apply_access(api, build_route_access(route))
            creds = work / "creds"
            creds.mkdir()
            spec = client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
            token = core.create_namespaced_service_account_token(
                "mem-proxy", NAMESPACE, client.AuthenticationV1TokenRequest(spec=spec)
            ).status.token
            (creds / "token").write_text(token)
            (creds / "ca.crt").write_bytes(cp.ca_file.read_bytes())
            (creds / "namespace").write_text(NAMESPACE)
            config_file = work / "config.json"
            config_file.write_text(_config(route, 1)["data"][CONFIG_KEY])
            env = dict(os.environ, KUBERNETES_SERVICE_HOST="127.0.0.1")
            env["KUBERNETES_SERVICE_PORT"] = str(cp.apiserver_port)
            ports = {"file_only": free_port(), "file_and_watch": free_port()}  # operations ports: /readyz
            for name, port in ports.items():
                argv = [sys.executable, "-m", "llmroute", "proxy", f"--config={config_file}"]
                argv += ["--host=127.0.0.1", f"--port={free_port()}", f"--metrics-port={port}"]
                if name == "file_and_watch":
                    argv += ["--watch-configmap=mem-proxy-config", f"--api-credentials={creds}"]
                procs.append(Process(name, argv, work / f"{name}.log", env=env).start())
            watching = ports["file_and_watch"]
            wait_for(lambda: _readyz(ports["file_only"])["status"] == "ready", timeout=30, what="proxy")
            wait_for(lambda: _readyz(watching)["source"] == "api", timeout=30, what="the watch")
            time.sleep(2)  # let start-up allocations settle before the first sample
            pids = {p.name: p.pid or 0 for p in procs}
            idle = {name: _sample(pid) for name, pid in pids.items()}
            started = time.monotonic()
            for generation in range(2, args.updates + 2):
                patch = {"data": _config(route, generation)["data"]}
                core.patch_namespaced_config_map("mem-proxy-config", NAMESPACE, patch)
                wait_for(
                    lambda g=generation: _readyz(watching)["generation"] == g,  # type: ignore[misc]
                    timeout=10,
                    what=f"generation {generation}",
                    interval=0.01,
                )
            per_update = (time.monotonic() - started) / args.updates
            after = {name: _sample(pid) for name, pid in pids.items()}
        finally:
            for proc in procs:
                proc.stop()
            cp.stop()
    emit(
        {
            "benchmark": "proxy_watch_memory",
            "updates": args.updates,
            "rss_kib_idle": idle,
            "rss_kib_after_updates": after,
            "watch_cost_kib_idle": idle["file_and_watch"] - idle["file_only"],
            "watch_cost_kib_after_updates": after["file_and_watch"] - after["file_only"],
            "write_to_served_seconds_mean_on_loopback": round(per_update, 4),
        }
    )


if __name__ == "__main__":
    main()
