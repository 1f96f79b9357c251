"""The proxy's background loops: each one asyncio task, started with the server and stopped before it closes.

:class:`BackgroundTask` owns the task of any long-running coroutine (the ConfigMap watch, with its own
reconnect loop); :class:`Periodic` is one whose coroutine runs a round every interval: the engine-metrics
scrape, the health probes and the config-file poll. The interval is asked for again after every round, so
a new config's interval applies from the next wait on. A round that raises is logged and the next one runs
on schedule: a background loop that died silently would freeze what it keeps up to date. The log line names
the exception's type and where it was raised, never its message (which may quote a URL, a header or a
config value). Cancellation (:meth:`BackgroundTask.stop`) is never caught: it ends the loop, mid-round too.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any


class BackgroundTask:
    """One asyncio task running ``body()`` (named ``name``), from :meth:`start` until :meth:`stop`."""

    def __init__(self, body: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self.body = body
        self.name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`stop` or the end of ``body()``."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start ``body()`` on the running event loop; nothing while started (until :meth:`stop`).

        Raises ``RuntimeError`` when no event loop is running."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.body(), name=self.name)

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended; nothing before :meth:`start` or after a stop.

        Raises what ``body()`` raised if it had ended by an exception, and ``CancelledError`` if the task
        that awaits this is itself cancelled meanwhile (the stop is not swallowed)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise


class Periodic(BackgroundTask):
    """A task that awaits ``run_round()`` every ``interval()`` seconds, until :meth:`stop`.

    ``interval()`` (seconds, ≥ 0; read after each round, and before the first with ``wait_first``) is the
    wait before the next round: counted from the end of the round, or with ``fixed_rate`` from its start
    (so a round longer than the interval is followed at once by the next). A round that raises an
    ``Exception`` is logged on ``log`` at ERROR as ``"<name> failed: <Type> at <file>:<line> in <function>"``
    and the schedule goes on; ``interval()`` should not raise (an exception from it ends the task, and
    :meth:`stop` raises it)."""

    def __init__(
        self,
        name: str,
        run_round: Callable[[], Awaitable[None]],
        interval: Callable[[], float],
        log: logging.Logger,
        *,
        fixed_rate: bool = False,
        wait_first: bool = False,
    ) -> None:
        super().__init__(self._run, name)
        self.run_round = run_round
        self.interval = interval
        self.log = log
        self.fixed_rate = fixed_rate
        self.wait_first = wait_first

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.wait_first:
            await asyncio.sleep(self.interval())
        while True:
            started = loop.time()
            try:
                await self.run_round()
            except Exception as exc:
                self.log.error("%s failed: %s", self.name, described(exc))
            wait = self.interval() - (loop.time() - started if self.fixed_rate else 0.0)
            await asyncio.sleep(max(0.0, wait))


def described(exc: BaseException) -> str:
    """``"<Type> at <file>:<line> in <function>"`` for where ``exc`` was raised (its innermost frame), or
    just the type without a traceback; never the exception's message."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {Path(last.filename).name}:{last.lineno} in {last.name}"
