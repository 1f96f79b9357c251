"""The background-loop helper on a real event loop: rounds at the interval (from a round's end, or from its
start with ``fixed_rate``), a raising round logged without its message and survived, start and stop in any
order, a stop mid-round, and an interval that changes between rounds."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re

import pytest

from llmroute.proxy.periodic import BackgroundTask, Periodic
from tests.proxy.support import eventually

log = logging.getLogger("tests.periodic")
EARLY = 0.002  # seconds a timer may fire before its due time (the loop's clock resolution and float sums)


class Rounds:
    """A round that records when each call started and ended (loop time, seconds) and in which task."""

    def __init__(self, duration: float = 0.0) -> None:
        self.duration = duration
        self.spans: list[tuple[float, float]] = []
        self.tasks: set[asyncio.Task[object] | None] = set()

    async def __call__(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.tasks.add(asyncio.current_task())
        if self.duration:
            await asyncio.sleep(self.duration)  # the round's own work, not a synchronisation
        self.spans.append((started, loop.time()))


async def run(
    rounds: Rounds, interval: float, count: int, fixed_rate: bool = False, first: bool = False
) -> float:
    """Run ``rounds`` every ``interval`` seconds until it ran ``count`` times; the loop time it started."""
    ticker = Periodic("ticker", rounds, lambda: interval, log, fixed_rate=fixed_rate, wait_first=first)
    started = asyncio.get_running_loop().time()
    ticker.start()
    try:
        await eventually(lambda: len(rounds.spans) >= count)
    finally:
        await ticker.stop()
    return started


async def test_rounds_run_one_interval_after_the_previous_round_ended() -> None:
    rounds = Rounds(duration=0.03)
    await run(rounds, 0.05, 4)
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(rounds.spans)]
    assert all(gap >= 0.05 - EARLY for gap in gaps), gaps


async def test_with_a_fixed_rate_the_interval_runs_from_each_rounds_start() -> None:
    rounds = Rounds(duration=0.03)
    await run(rounds, 0.05, 4, fixed_rate=True)
    starts = [span[0] for span in rounds.spans]
    assert all(b - a >= 0.05 - EARLY for a, b in itertools.pairwise(starts)), starts


async def test_with_a_fixed_rate_a_round_longer_than_the_interval_is_followed_at_once() -> None:
    rounds = Rounds(duration=0.6)
    await run(rounds, 0.5, 2, fixed_rate=True)
    (_, first_end), (second_start, _) = rounds.spans[:2]
    assert second_start - first_end < 0.5  # without fixed_rate it would be 0.5 or more


async def test_the_first_round_waits_an_interval_when_asked_to() -> None:
    rounds = Rounds()
    started = await run(rounds, 0.1, 1, first=True)
    assert rounds.spans[0][0] - started >= 0.1 - EARLY


async def test_a_raising_round_is_logged_without_its_message_and_the_rounds_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    async def failing_round() -> None:
        calls.append(len(calls))
        if len(calls) <= 2:
            raise ValueError("Bearer sk-secret-key refused")

    ticker = Periodic("engine round", failing_round, lambda: 0.01, log)
    with caplog.at_level(logging.INFO, logger=log.name):
        ticker.start()
        try:
            await eventually(lambda: len(calls) >= 4)
        finally:
            await ticker.stop()
    failures = [r for r in caplog.records if r.name == log.name]
    assert [r.levelno for r in failures] == [logging.ERROR] * 2
    for record in failures:
        assert re.fullmatch(
            r"engine round failed: ValueError at test_periodic\.py:\d+ in failing_round", record.getMessage()
        ), record.getMessage()
        assert record.exc_info is None
    assert "sk-secret" not in caplog.text


async def test_stop_before_start_and_twice_and_start_twice_run_one_task() -> None:
    rounds = Rounds()
    ticker = Periodic("ticker", rounds, lambda: 0.01, log)
    await ticker.stop()  # never started: nothing to stop
    assert not ticker.running and rounds.spans == []
    ticker.start()
    ticker.start()  # already started: still one task
    await eventually(lambda: len(rounds.spans) >= 3)
    assert len(rounds.tasks) == 1 and ticker.running
    await ticker.stop()
    await ticker.stop()
    assert not ticker.running
    assert all(task is not None and task.done() for task in rounds.tasks)


async def test_a_stop_during_a_round_cancels_the_round_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    entered = asyncio.Event()
    seen: list[str] = []

    async def endless_round() -> None:
        entered.set()
        try:
            await asyncio.Event().wait()  # never set: only a cancellation ends it
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    ticker = Periodic("ticker", endless_round, lambda: 0.01, log)
    with caplog.at_level(logging.INFO, logger=log.name):
        ticker.start()
        await asyncio.wait_for(entered.wait(), 10)
        await asyncio.wait_for(ticker.stop(), 10)
    assert seen == ["cancelled"] and not ticker.running
    assert [r for r in caplog.records if r.name == log.name] == []


async def test_an_interval_changed_during_a_round_applies_to_the_next_wait() -> None:
    release = asyncio.Event()
    interval = 3600.0
    calls = 0

    async def held_round() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await release.wait()

    ticker = Periodic("ticker", held_round, lambda: interval, log)
    ticker.start()
    try:
        await eventually(lambda: calls == 1)
        interval = 0.01  # a new config arrives while the first round runs
        release.set()
        await eventually(lambda: calls >= 3)  # with the hour it started with, a second round would wait
    finally:
        await ticker.stop()


async def test_a_stop_that_is_itself_cancelled_stays_cancelled() -> None:
    running, stopping = asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopping.set()
            await asyncio.Event().wait()  # slow to wind down: the stop waits for it

    task = BackgroundTask(stubborn, "stubborn")
    task.start()
    await asyncio.wait_for(running.wait(), 10)
    stopper = asyncio.get_running_loop().create_task(task.stop())
    await asyncio.wait_for(stopping.wait(), 10)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
