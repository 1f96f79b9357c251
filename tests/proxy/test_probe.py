"""Active probes: idle upstreams (e.g. a primary the operator failed away from) are probed so there is
evidence of recovery; busy ones are not; outcomes land in the metric the operator reads."""

from __future__ import annotations

from llmroute.testing.fake_upstream import FakeBehavior, FakeUpstream
from tests.proxy.conftest import Harness
from tests.proxy.support import config, eventually, metric, upstream

PROBES = "llmroute_proxy_upstream_probes_total"


def _cfg(primary: str, backup: str, interval: float = 0.2) -> dict[str, object]:
    return config(
        upstream(primary, name="primary", group=0),
        upstream(backup, name="backup", group=1),
        activeGroup=1,  # the operator failed over: the primary gets no traffic
        passiveHealth={"probeIntervalSeconds": interval},
    )


async def test_idle_upstream_is_probed_and_its_recovery_is_visible(
    harness: Harness, fake: FakeUpstream, fake_b: FakeUpstream
) -> None:
    fake.default = FakeBehavior(status=500)
    await harness.start(_cfg(fake.url, fake_b.url))

    async def failures_seen() -> bool:
        text = await harness.metrics()
        return metric(text, PROBES, upstream="primary", outcome="status_500") >= 2

    await eventually(failures_seen, within=10)
    fake.default = FakeBehavior()

    async def recovery_seen() -> bool:
        return metric(await harness.metrics(), PROBES, upstream="primary", outcome="ok") >= 2

    await eventually(recovery_seen, within=10)
    assert fake.stats.received == 0  # probes only: no client request was sent to the idle primary


async def test_busy_upstream_is_not_probed(
    harness: Harness, fake: FakeUpstream, fake_b: FakeUpstream
) -> None:
    await harness.start(_cfg(fake.url, fake_b.url, interval=0.5))
    assert (await harness.chat())[0] == 200  # served by the active backup
    probed_backup = metric(await harness.metrics(), PROBES, upstream="backup")

    async def primary_probed_while_backup_busy() -> bool:
        assert (await harness.chat())[0] == 200  # keep the backup busy all along
        return metric(await harness.metrics(), PROBES, upstream="primary") >= 3

    await eventually(primary_probed_while_backup_busy, within=10)
    assert metric(await harness.metrics(), PROBES, upstream="backup") == probed_backup


async def test_probes_can_be_turned_off(harness: Harness, fake: FakeUpstream, fake_b: FakeUpstream) -> None:
    await harness.start(_cfg(fake.url, fake_b.url, interval=0))
    assert (await harness.chat())[0] == 200
    assert fake.stats.models_requests == 0
    assert metric(await harness.metrics(), PROBES) == 0
