"""A local stand-in for the kubelets of one Deployment: real ``llmroute proxy`` processes on loopback.

The local control plane has no scheduler or kubelet, so the proxy Deployment the operator scales never
gets running pods. :class:`PodRunner` closes that loop on this machine. Every ``interval`` seconds it reads
the Deployment (its ``spec.replicas`` and pod template) and the ConfigMaps and Secrets the template
mounts, then:

* publishes the mounted files kubelet-style (:mod:`llmroute_dev.volumes`): the ConfigMap's
  ``config.json`` with an atomic ``..data`` swap, its mounted paths rewritten to local ones, upstream API
  keys passed as the environment variables the config names;
* keeps exactly ``spec.replicas`` proxy processes running, each on a free loopback port with the
  template's arguments (``--host``/``--port`` replaced), started newest-last, stopped newest-first,
  restarted if they exit;
* counts a pod ready once its ``/readyz`` answers 200; a pod being stopped leaves the endpoints first and
  gets SIGTERM a moment later (the endpoints controller's propagation delay), then drains;
* keeps Prometheus scraping exactly the running proxies (``Prometheus.set_targets``).

:meth:`PodRunner.endpoints` is what a Service would route to: the ready pods' base URLs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from llmroute.spec.proxyconfig import CONFIG_KEY, ProxyConfig
from llmroute_dev.procs import Process, free_port
from llmroute_dev.prometheus import Prometheus
from llmroute_dev.volumes import Files, LocalConfig, localise, mounts_of, volume_files, write_atomic

log = logging.getLogger("llmroute.podrunner")
TERMINATION_DELAY = 1.0  # seconds between leaving the endpoints and SIGTERM
SECRET_REFRESH = 5.0  # seconds a Secret read is reused (kubelet refreshes them lazily too)


@dataclass
class Pod:
    name: str
    port: int
    process: Process
    started: float
    ready_at: float | None = None
    restarts: int = 0
    config_hash: str | None = None  # what its /readyz says it serves

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class PodRunner:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        deployment: str,
        workdir: Path,
        prometheus: Prometheus,
        *,
        extra_targets: Sequence[str] = (),
        interval: float = 0.5,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.apps, self.core = client.AppsV1Api(api), client.CoreV1Api(api)
        self.api = api
        self.namespace, self.deployment = namespace, deployment
        self.workdir, self.prometheus = workdir, prometheus
        self.extra_targets = list(extra_targets)
        self.interval = interval
        self.on_event = on_event or (lambda message: log.info("%s", message))
        self.desired = 0
        self.config: LocalConfig | None = None
        self.config_source_hash: str | None = None  # the ConfigMap's hash the local copy was made from
        self.started_total = 0
        self.last_error: str | None = None
        self._pods: list[Pod] = []
        self._serial = 0
        self._targets: list[str] | None = None
        self._secrets: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._stoppers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what others read -------------------------------------------------------------------------
    def endpoints(self) -> list[str]:
        with self._lock:
            return [p.url for p in self._pods if p.ready_at is not None]

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._pods)

    @property
    def ready(self) -> int:
        return len(self.endpoints())

    def serving_current(self) -> int:
        """Ready pods whose config is the latest one published (the hot reload has happened)."""
        current = self.config.hash if self.config else None
        return sum(1 for p in self._pods_snapshot() if p.ready_at is not None and p.config_hash == current)

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> PodRunner:
        self._thread = threading.Thread(target=self._loop, name="podrunner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop syncing and every proxy process (waits for them)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            pods, self._pods = self._pods, []
        for pod in pods:
            pod.process.stop(timeout=5)
        for thread in self._stoppers:
            thread.join(timeout=15)
        self._set_targets([])

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
                self.last_error = None
            except Exception as exc:  # the API server may blink; keep the pods we have and retry
                if str(exc) != self.last_error:
                    log.warning("pod runner sync failed: %s", exc)
                self.last_error = str(exc)
            self._stop.wait(self.interval)

    # --- one sync -----------------------------------------------------------------------------------
    def sync(self) -> None:
        deployment = self._read("Deployment", self.deployment)
        if deployment is None:
            self.desired = 0
            self._scale([], 0)
            return
        self.desired = int(deployment["spec"].get("replicas") or 0)
        pod_spec = deployment["spec"]["template"]["spec"]
        container = pod_spec["containers"][0]
        mounts = mounts_of(container)
        volumes = volume_files(pod_spec, self._read)
        args = self._args(container, mounts, volumes)
        self._scale(args or [], self.desired if args else 0)
        self._probe()
        self._set_targets([p.url.removeprefix("http://") for p in self._pods_snapshot()])

    def _args(
        self, container: dict[str, Any], mounts: dict[str, str], volumes: dict[str, Files]
    ) -> list[str]:
        """Publish the config volume (localised) and the files it names; the process arguments."""
        args = list(container.get("args") or [])
        config_arg = next((a for a in args if a.startswith("--config=")), None)
        if config_arg is None:
            raise RuntimeError("the proxy container has no --config= argument")
        config_path = config_arg.split("=", 1)[1]
        mount_path = str(Path(config_path).parent)
        volume = mounts.get(mount_path)
        text = volumes.get(volume or "", {}).get(Path(config_path).name)
        if volume is None or text is None:
            return []  # ContainerCreating: the ConfigMap is not there yet
        local = localise(text.decode(), mounts, volumes, self._volume_dir)
        for name, files in local.files.items():
            write_atomic(self._volume_dir(name), files)
        if write_atomic(self._volume_dir(volume), {CONFIG_KEY: local.text.encode()}):
            self.config_source_hash = ProxyConfig.loads(text.decode()).hash
        self.config = local
        local_config = self._volume_dir(volume) / Path(config_path).name
        rest = [a for a in args if not a.startswith(("--config=", "--host=", "--port="))]
        return [*rest, f"--config={local_config}", "--host=127.0.0.1"]

    def _volume_dir(self, volume: str) -> Path:
        return self.workdir / "volumes" / volume

    def _scale(self, args: list[str], replicas: int) -> None:
        with self._lock:
            for pod in list(self._pods):
                if not pod.process.alive():
                    self.on_event(f"{pod.name} exited; restarting it:\n{pod.process.tail(5)}")
                    pod.process.start()
                    pod.started, pod.ready_at, pod.restarts = time.monotonic(), None, pod.restarts + 1
            while len(self._pods) < replicas:
                self._pods.append(self._new_pod(args))
            extra = self._pods[replicas:]
            del self._pods[replicas:]
        for pod in reversed(extra):
            thread = threading.Thread(target=self._terminate, args=(pod,), daemon=True)
            thread.start()
            self._stoppers = [t for t in self._stoppers if t.is_alive()] + [thread]

    def _new_pod(self, args: list[str]) -> Pod:
        self._serial += 1
        port = free_port()
        name = f"{self.deployment}-{self._serial}"
        env = dict(os.environ) | (self.config.env if self.config else {})
        env.pop("KUBECONFIG", None)
        argv = [sys.executable, "-m", "llmroute", *args, f"--port={port}"]
        process = Process(name, argv, self.workdir / "pods" / f"{name}.log", env=env).start()
        self.started_total += 1
        return Pod(name, port, process, time.monotonic())

    def _terminate(self, pod: Pod) -> None:
        time.sleep(TERMINATION_DELAY)  # endpoints first, then SIGTERM, as in a cluster
        pod.process.stop(timeout=10)

    def _probe(self) -> None:
        """Readiness probes: ``/readyz`` 200 is ready, 503 is not; no answer in time changes nothing."""
        for pod in self._pods_snapshot():
            try:
                with urllib.request.urlopen(f"{pod.url}/readyz", timeout=0.5) as resp:
                    body = json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                exc.close()
                pod.ready_at = None
                continue
            except (OSError, ValueError):
                continue
            pod.config_hash = body.get("config")
            if pod.ready_at is None:
                pod.ready_at = time.monotonic()
                self.on_event(f"{pod.name} ready on 127.0.0.1:{pod.port}")

    def _pods_snapshot(self) -> list[Pod]:
        with self._lock:
            return list(self._pods)

    def _set_targets(self, targets: list[str]) -> None:
        wanted = sorted(targets) + self.extra_targets
        if wanted != self._targets:
            self.prometheus.set_targets(wanted)
            self._targets = wanted

    def _read(self, kind: str, name: str) -> dict[str, Any] | None:
        readers: dict[str, Callable[..., Any]] = {
            "Deployment": self.apps.read_namespaced_deployment,
            "ConfigMap": self.core.read_namespaced_config_map,
            "Secret": self.core.read_namespaced_secret,
        }
        now = time.monotonic()
        cached = self._secrets.get(name) if kind == "Secret" else None
        if cached is not None and now - cached[0] < SECRET_REFRESH:
            return cached[1]
        try:
            data: dict[str, Any] | None = self.api.sanitize_for_serialization(
                readers[kind](name, self.namespace)
            )
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            data = None
        if data is not None:
            data["kind"] = kind
        if kind == "Secret":
            self._secrets[name] = (now, data)
        return data
