"""The demo's closing summary and its checks (what must have happened for the demo to pass)."""

from __future__ import annotations

from dataclasses import dataclass

from llmroute_dev.demo.loadgen import Tally
from llmroute_dev.demo.monitor import Monitor
from llmroute_dev.demo.traceshape import Shape
from llmroute_dev.podrunner import PodRunner

MAX_FAILED = 0.01  # share of requests that may fail (no answer, or an error other than 429)


@dataclass
class Outage:
    """When the demo broke the primary endpoint and when it mended it (seconds into the traffic)."""

    failed_at: float | None = None
    recovered_at: float | None = None


def _replicas(monitor: Monitor) -> str:
    changes = monitor.timeline.replicas
    if not changes:
        return "no change"
    ups = sum(1 for _, a, b in changes if b > a)
    steps = ", ".join(f"{a}->{b} at {t:.0f}s" for t, a, b in changes)
    peak = max(b for _, _, b in changes)
    return f"{len(changes)} changes ({ups} up, {len(changes) - ups} down), peak {peak}: {steps}"


def summary(monitor: Monitor, total: Tally, runner: PodRunner, outage: Outage, shape: Shape) -> str:
    tl = monitor.timeline
    lines = [
        "",
        f"summary ({monitor.elapsed():.0f} s of traffic; {shape.describe()})",
        f"  replicas:   {_replicas(monitor)}",
        f"  proxies:    {runner.started_total} processes started, {runner.ready} ready at the end, "
        f"{runner.serving_current()} on the latest config",
    ]
    switches = (
        ("failover", "primary broken", outage.failed_at, 1, "failed over to backup", "no failover"),
        ("failback", "primary mended", outage.recovered_at, 0, "failed back to primary", "no failback"),
    )
    for label, event, at, group, done, missing in switches:
        if at is None:
            continue
        switched = tl.group_switch(group, at)
        outcome = f"{done} at {switched:.0f}s ({switched - at:.0f} s later)" if switched else missing
        lines.append(f"  {label + ':':<12}{event} at {at:.0f}s; {outcome}")
    served = ", ".join(f"{name} {count}" for name, count in sorted(total.upstreams.items()))
    limited = ", ".join(f"{name} {count}" for name, count in total.limited_clients.most_common(3))
    errors = ", ".join(f"{kind} {count}" for kind, count in total.errors.most_common(3))
    p95 = total.p95()
    lines += [
        f"  requests:   {total.sent} sent, {total.ok} served ({served or 'none'}), "
        f"{total.limited} rate-limited ({limited or 'none'}), {total.failed} failed ({errors or 'none'}), "
        f"{total.unrouted} found no ready proxy",
        f"  latency:    p95 {'-' if p95 is None else f'{1000 * p95:.0f} ms'} (served requests, end to end)",
        f"  events:     {len(tl.events)} Events on the LLMRoute",
    ]
    return "\n".join(lines)


def checks(monitor: Monitor, total: Tally, outage: Outage) -> list[str]:
    """Print each check; return the failed ones (empty: the demo passed)."""
    tl = monitor.timeline
    ups = [(a, b) for _, a, b in tl.replicas if b > a]
    over = tl.group_switch(1, outage.failed_at) if outage.failed_at is not None else None
    back = tl.group_switch(0, outage.recovered_at) if outage.recovered_at is not None else None
    failed_share = total.failed / total.sent if total.sent else 1.0
    results = [
        (bool(ups), f"scaled up ({', '.join(f'{a}->{b}' for a, b in ups)})" if ups else "never scaled up"),
        (over is not None, "failed over to backup" if over is not None else "never failed over"),
        (back is not None, "failed back to primary" if back is not None else "never failed back"),
        (total.upstreams.get("backup", 0) > 0, "the proxies served from backup while failed over"),
        (total.limited > 0, "the heavy client was rate-limited (429)"),
        (total.ok > 0 and failed_share <= MAX_FAILED, f"{100 * failed_share:.2f}% of requests failed"),
    ]
    print("checks:")
    for ok, text in results:
        print(f"  {'ok  ' if ok else 'FAIL'}  {text}")
    return [text for ok, text in results if not ok]
