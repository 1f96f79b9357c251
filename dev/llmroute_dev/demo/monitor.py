"""What the demo shows: the route as the API server and Prometheus see it, as a table and a timeline.

:meth:`Monitor.poll` reads the LLMRoute's status, the Deployment's ``spec.replicas``, the ConfigMap's
active upstream group, new Events about the route, and the observed request rate from Prometheus. It
remembers every replica change and group switch with its time, for the summary and the demo's checks.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from llmroute import GROUP, PLURAL, VERSION
from llmroute.spec.proxyconfig import CONFIG_KEY, ProxyConfig
from llmroute_dev.demo.loadgen import Tally
from llmroute_dev.prometheus import Prometheus

COLUMNS = (
    ("time", 6), ("offered", 8), ("observed", 9), ("replicas", 9), ("active", 8), ("served by", 13),
    ("429/s", 6), ("p95 ms", 7), ("Ready", 6), ("FailedOver", 11), ("last decision", 0),
)  # fmt: skip
REASON_WIDTH = 64


@dataclass
class Snapshot:
    desired: int | None = None
    active_group: int | None = None
    config_hash: str | None = None
    ready: str = "-"
    failed_over: str = "-"
    reason: str = ""
    observed_rps: float | None = None


@dataclass
class Timeline:
    replicas: list[tuple[float, int, int]] = field(default_factory=list)  # (t, from, to)
    groups: list[tuple[float, int]] = field(default_factory=list)  # (t, active group from then on)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, reason, message)

    def group_switch(self, to: int, after: float) -> float | None:
        """The first time at or after ``after`` the active group became ``to``."""
        return next((t for t, g in self.groups if g == to and t >= after), None)


class Monitor:
    def __init__(
        self,
        api: client.ApiClient,
        prometheus: Prometheus,
        namespace: str,
        route: str,
        group_names: dict[int, str],
    ) -> None:
        self.custom, self.core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.prometheus = prometheus
        self.namespace, self.route = namespace, route
        self.group_names = group_names
        self.now = Snapshot()
        self.timeline = Timeline()
        self._seen_events: set[str] = set()
        self.started = time.monotonic()
        self.last_success = 0.0  # elapsed time of the last complete poll

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def poll(self) -> list[tuple[float, str, str]]:
        """Refresh :attr:`now` and the timeline; returns the Events seen for the first time."""
        t = self.elapsed()
        snap = Snapshot()
        route = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.route)
        status = route.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        snap.ready = conditions.get("Ready", {}).get("status", "-")
        snap.failed_over = conditions.get("FailedOver", {}).get("status", "-")
        snap.reason = (status.get("recommendation") or {}).get("reason", "")
        try:
            scale = self.apps.read_namespaced_deployment_scale(f"{self.route}-proxy", self.namespace)
            snap.desired = int(scale.spec.replicas or 0)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        try:
            cm = self.core.read_namespaced_config_map(f"{self.route}-proxy-config", self.namespace)
            config = ProxyConfig.loads(cm.data[CONFIG_KEY])
            snap.active_group, snap.config_hash = config.active_group, config.hash
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        rps = self.prometheus.query(
            f'sum(rate(llmroute_requests_total{{route="{self.namespace}/{self.route}"}}[10s]))'
        )
        snap.observed_rps = float(rps[0]["value"][1]) if rps else None
        before = self.now
        if snap.desired is not None and before.desired is not None and snap.desired != before.desired:
            self.timeline.replicas.append((t, before.desired, snap.desired))
        if snap.active_group is not None and snap.active_group != before.active_group:
            self.timeline.groups.append((t, snap.active_group))
        self.now = snap
        fresh = self._new_events(t)
        self.last_success = t
        return fresh

    def _new_events(self, t: float) -> list[tuple[float, str, str]]:
        fresh: list[tuple[float, str, str]] = []
        for event in self.core.list_namespaced_event(self.namespace).items:
            obj = event.involved_object
            if obj is None or obj.kind != "LLMRoute" or event.metadata.uid in self._seen_events:
                continue
            self._seen_events.add(event.metadata.uid)
            fresh.append((t, event.reason or "", (event.message or "").strip()))
        self.timeline.events += fresh
        return fresh

    def group_name(self, group: int | None) -> str:
        return "-" if group is None else self.group_names.get(group, f"group {group}")


def header() -> str:
    return "  ".join(name.rjust(width) if width else name for name, width in COLUMNS)


def short_reason(reason: str) -> str:
    text = re.sub(r"\s*\([^)]*\)", "", reason)  # "(level 52, burst margin x1.00)" is detail
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 3] + "..."


def row(
    elapsed: float, offered: float, window: Tally, seconds: float, snap: Snapshot, ready: int, name: str
) -> str:
    served = sum(window.upstreams.values())
    top = window.upstreams.most_common(1)
    served_by = f"{top[0][0]} {100 * top[0][1] / served:.0f}%" if top and served else "-"
    p95 = window.p95()
    cells: list[Any] = [
        f"{elapsed:.0f}s",
        f"{offered:.1f}",
        "-" if snap.observed_rps is None else f"{snap.observed_rps:.1f}",
        f"{'-' if snap.desired is None else snap.desired}/{ready}",
        name,
        served_by,
        f"{window.limited / seconds:.1f}",
        "-" if p95 is None else f"{1000 * p95:.0f}",
        snap.ready,
        snap.failed_over,
        short_reason(snap.reason),
    ]
    return "  ".join(str(c).rjust(w) if w else str(c) for c, (_, w) in zip(cells, COLUMNS, strict=True))
