"""Spec change -> Deployment patched: how long after `kubectl apply` of a new LLMRoute spec the proxy
Deployment's replicas reflect it (p50/p99 over N changes). Prints JSON.

    .venv/bin/python -m bench.operator_latency [--changes 40]
"""

from __future__ import annotations

import argparse
import functools
import json
import threading
import time

from kubernetes import client, watch

from bench.operator_common import environment, namespace, percentile, start_operator
from llmroute import GROUP, PLURAL, VERSION
from llmroute_dev.procs import wait_for


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=40)
    args = parser.parse_args()
    with environment() as bench:
        ns = namespace(bench.api, "bench-latency")
        op = start_operator(bench, [ns])
        try:
            result = measure(bench.api, ns, args.changes)
        finally:
            op.stop()
    print(json.dumps(result, indent=2))


def measure(api: client.ApiClient, ns: str, changes: int) -> dict[str, object]:
    custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
    route = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMRoute",
        "metadata": {"name": "lat"},
        # a long interval: only the spec change can explain a prompt patch
        "spec": {
            "reconcileIntervalSeconds": 600,
            "proxy": {"minReplicas": 1, "maxReplicas": changes + 5},
            "upstreams": [{"name": "a", "url": "http://127.0.0.1:9/v1", "model": "m"}],
        },
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, route)

    def created() -> bool:
        try:
            replicas: int = apps.read_namespaced_deployment_scale("lat-proxy", ns).spec.replicas
            return replicas == 1
        except client.ApiException:
            return False

    wait_for(created, timeout=60, what="proxy Deployment")
    seen: dict[int, float] = {}
    stop = threading.Event()

    def watcher() -> None:
        w = watch.Watch()
        for event in w.stream(apps.list_namespaced_deployment, ns, timeout_seconds=600):
            obj = event["object"]
            if obj.metadata.name == "lat-proxy":
                seen.setdefault(obj.spec.replicas, time.monotonic())
            if stop.is_set():
                w.stop()

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    time.sleep(1)  # let the watch establish (measurement setup, not synchronisation under test)
    latencies = []
    for i in range(changes):
        want = i + 2
        started = time.monotonic()
        patch = {"spec": {"proxy": {"minReplicas": want}}}
        custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "lat", patch)
        wait_for(
            functools.partial(seen.__contains__, want), timeout=30, what=f"replicas {want}", interval=0.002
        )
        latencies.append(seen[want] - started)
    stop.set()
    return {
        "benchmark": "spec change -> Deployment patched",
        "changes": changes,
        "p50_seconds": round(percentile(latencies, 50), 4),
        "p99_seconds": round(percentile(latencies, 99), 4),
        "max_seconds": round(max(latencies), 4),
        "target_p50_seconds": 1.0,
        "ok": percentile(latencies, 50) < 1.0,
    }


if __name__ == "__main__":
    main()
