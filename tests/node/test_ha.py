"""High availability: with ``replicaCount: 2`` one operator pod acts (the Lease holder), the other stands by;
when the active pod is deleted (SIGTERM: it hands the Lease over) or its process is killed (SIGKILL: the
Lease expires), a live candidate takes over under traffic and applies a spec change made at the moment of
the kill, and no two operator pods ever write at the same time (the apiserver's audit log names the pod of
every write). After a delete that is the standby; after a SIGKILL the Lease is free for whichever candidate
looks first once it has expired: the standby, or the killed pod's restarted container (a new process with
a new identity, which started watching the Lease within a second of the kill) - client-go's algorithm
does not choose between them, and either keeps the route served.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from llmroute_dev.node.node import Node
from llmroute_dev.node.prometheus import NodePrometheus
from llmroute_dev.procs import wait_for
from tests.node.conftest import FIGURES, RELEASE_NAMESPACE, ROOT, Route, helm
from tests.node.traffic import Traffic

OPERATOR = "app.kubernetes.io/name=llmroute"
LEASE = "llmroute"  # the operator Deployment's name for the release "llmroute"
SERVICE_ACCOUNT = f"system:serviceaccount:{RELEASE_NAMESPACE}:llmroute"
BOUND_SECONDS = 15.0  # kill -> the spec change applied by the new holder, both ways of dying
RECONCILE_SECONDS = 5  # the route's reconcileIntervalSeconds (conftest.route_manifest)


def _json(node: Node, *args: str) -> Any:
    return json.loads(node.kubectl(*args, "-o", "json"))


def _identity(node: Node) -> str:
    """The Lease holder's identity, ``<pod>_<process>`` ('' when free)."""
    return node.kubectl(
        "-n", RELEASE_NAMESPACE, "get", "lease", LEASE, "-o", "jsonpath={.spec.holderIdentity}", check=False
    )


def _holder(node: Node) -> str:
    """The pod holding the Lease ('' when free)."""
    who = _identity(node)
    return who.rsplit("_", 1)[0] if who else ""


def _ready_operators(node: Node) -> list[str]:
    pods = _json(node, "-n", RELEASE_NAMESPACE, "get", "pods", "-l", OPERATOR)["items"]
    return [
        p["metadata"]["name"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


@dataclass
class Write:
    at: float  # epoch seconds (the apiserver's stageTimestamp)
    pod: str
    what: str  # verb resource[/subresource] namespace/name


def operator_writes(audit_log: Path, since: float, pod_ips: dict[str, str]) -> list[Write]:
    """Every successful write by the operator's ServiceAccount after ``since`` but to its Lease, with the pod
    that made it: from the token's pod name (``user.extra``), else from the source address (``pod_ips``)."""
    out = []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        ref, user = event.get("objectRef", {}), event.get("user", {})
        if user.get("username") != SERVICE_ACCOUNT or ref.get("resource") == "leases":
            continue
        if event.get("responseStatus", {}).get("code", 500) >= 300:
            continue
        at = _epoch(event["stageTimestamp"])
        if at < since:
            continue
        named = user.get("extra", {}).get("authentication.kubernetes.io/pod-name")
        pod = named[0] if named else pod_ips.get((event.get("sourceIPs") or ["?"])[0], "?")
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        out.append(Write(at, pod, f"{event['verb']} {resource} {ref.get('namespace')}/{ref.get('name')}"))
    return sorted(out, key=lambda w: w.at)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _kill_process(node: Node, pod: str) -> int:
    """SIGKILL the operator process of ``pod`` from the host (its cgroup names the pod's UID); returns it."""
    uid = node.kubectl("-n", RELEASE_NAMESPACE, "get", "pod", pod, "-o", "jsonpath={.metadata.uid}")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroup = (entry / "cgroup").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"pod{uid}" in cgroup and b"operator" in cmdline:
            os.kill(int(entry.name), signal.SIGKILL)
            return int(entry.name)
    raise AssertionError(f"no operator process found for pod {pod} ({uid})")


@pytest.fixture(scope="module")
def two_operators(node: Node, route: Route, node_prometheus: NodePrometheus) -> Iterator[None]:
    helm(
        node,
        "upgrade",
        "llmroute",
        str(ROOT / "helm" / "llmroute"),
        "--namespace",
        RELEASE_NAMESPACE,
        "--reuse-values",
        "--set",
        "replicaCount=2",
        "--wait",
        "--timeout=3m",
    )
    wait_for(
        lambda: len(_ready_operators(node)) == 2, timeout=120, what="two Ready operator pods", interval=0.5
    )
    wait_for(lambda: _holder(node) in _ready_operators(node), timeout=60, what="a Lease holder", interval=0.5)
    yield


def _operator_ips(node: Node) -> dict[str, str]:
    pods = _json(node, "-n", RELEASE_NAMESPACE, "get", "pods", "-l", OPERATOR)["items"]
    return {p["status"]["podIP"]: p["metadata"]["name"] for p in pods if p["status"].get("podIP")}


def _min_replicas(node: Node, route: Route) -> int:
    return int(
        _json(node, "-n", route.namespace, "get", "llmroute", route.name)["spec"]["proxy"]["minReplicas"]
    )


def _replicas(node: Node, route: Route) -> tuple[int, int]:
    dep = _json(node, "-n", route.namespace, "get", "deployment", f"{route.name}-proxy")
    return int(dep["spec"]["replicas"]), int(dep["metadata"]["generation"])


def _fail_over(node: Node, route: Route, how: str) -> dict[str, Any]:
    """Kill the active operator ``how`` ("delete": the pod, SIGTERM; "kill": its process, SIGKILL), raise
    minReplicas by one at the same moment, and time the standby's takeover and its write of the change."""
    killed = _identity(node)
    active = killed.rsplit("_", 1)[0]
    standby = next(p for p in _ready_operators(node) if p != active)
    before, generation = _replicas(node, route)
    want = max(_min_replicas(node, route), before) + 1
    ips = _operator_ips(node)
    started_epoch, started = time.time(), time.monotonic()
    if how == "delete":
        node.kubectl("-n", RELEASE_NAMESPACE, "delete", "pod", active, "--wait=false")
    else:
        _kill_process(node, active)
    patch = json.dumps({"spec": {"proxy": {"minReplicas": want}}})
    node.kubectl("-n", route.namespace, "patch", "llmroute", route.name, "--type=merge", "-p", patch)
    # any other live candidate may take the Lease: the standby, or after a SIGKILL the killed pod's
    # restarted container (a new process, a new identity) when its first look at the Lease was as early
    wait_for(lambda: _identity(node) not in ("", killed), timeout=60, what="a new Lease holder", interval=0.1)
    took_lease = time.monotonic() - started
    holder = _holder(node)
    wait_for(lambda: _replicas(node, route)[0] == want, timeout=60, what="the change applied", interval=0.1)
    applied = time.monotonic() - started
    # watch two more reconcile intervals: the replicas stay where they were written (nothing undoes or
    # repeats the change), then count what was written since the kill
    window_end = time.monotonic() + 2 * RECONCILE_SECONDS + 2
    while time.monotonic() < window_end:
        assert _replicas(node, route)[0] == want, "the replicas moved again after the takeover"
        time.sleep(0.5)
    ips |= _operator_ips(node)
    assert node.control_plane is not None
    writes = operator_writes(node.control_plane.audit_log, started_epoch, ips)
    after, generation_after = _replicas(node, route)
    return {
        "how": how,
        "active": active,
        "standby": standby,
        "holder": holder,
        "taken_by": "standby" if holder == standby else "restarted container" if holder == active else holder,
        "lease_taken_seconds": round(took_lease, 2),
        "change_applied_seconds": round(applied, 2),
        "replicas": [before, after],
        "generation_delta": generation_after - generation,
        "writes": writes,
    }


def test_standby_takes_over_under_traffic_within_the_bound_and_never_writes_alongside(
    node: Node, route: Route, two_operators: None
) -> None:
    traffic = Traffic(route.service_url, rate=8, keepalive=True).start()
    results = []
    try:
        for how in ("delete", "kill"):
            wait_for(
                lambda: len(_ready_operators(node)) == 2,
                timeout=120,
                what="two Ready operators",
                interval=0.5,
            )
            results.append(_fail_over(node, route, how))
    finally:
        traffic.stop()
        node.kubectl(
            "-n",
            route.namespace,
            "patch",
            "llmroute",
            route.name,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"proxy": {"minReplicas": 2}}}),
        )
    FIGURES["ha_failover"] = [
        {k: v for k, v in r.items() if k != "writes"}
        | {"writes_by_pod": _count_by_pod(r["writes"]), "scale_writes": _scale_writes(r["writes"])}
        for r in results
    ] + [{"traffic": dict(traffic.counts())}]
    for r in results:
        writes: list[Write] = r["writes"]
        assert r["taken_by"] in ("standby", "restarted container"), r
        assert r["how"] == "kill" or r["taken_by"] == "standby", r  # a deleted pod hands over to the standby
        new = [w for w in writes if w.pod == r["holder"]]
        others = [w for w in writes if w.pod not in (r["active"], r["holder"])]
        assert new, f"{r['how']}: the new holder wrote nothing"
        if r["holder"] != r["active"]:
            # never two writers: all the old pod wrote after the kill precedes the new holder's first write
            old = [w for w in writes if w.pod == r["active"]]
            assert not old or old[-1].at <= new[0].at, (r["how"], old[-1], new[0])
        assert not others, others  # the candidate that did not take the Lease stood by and wrote nothing
        # the change was written once: one scale write, one new Deployment generation
        assert _scale_writes(writes) == 1, [w.what for w in writes]
        assert r["generation_delta"] == 1
        assert r["change_applied_seconds"] <= BOUND_SECONDS, r
    assert traffic.failures() == 0, traffic.counts()


def _count_by_pod(writes: list[Write]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for w in writes:
        counts[w.pod] = counts.get(w.pod, 0) + 1
    return counts


def _scale_writes(writes: list[Write]) -> int:
    return sum(1 for w in writes if "deployments/scale" in w.what)
