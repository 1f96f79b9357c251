"""Hot reload: poll the config file (and the secret files it names) and swap in valid new configs.

Polling ``os.stat`` follows symlinks, so kubelet's atomic ConfigMap update — a new timestamped directory
and a rename of the ``..data`` symlink — shows up as a new inode/mtime on the next poll, as does an
ordinary rewrite. A config that fails to load is refused: the last good one keeps serving, the error is
logged and counted (``llmroute_proxy_config_reloads_total{result="error"}``). In-flight requests keep the
snapshot they started with, so nothing is dropped by a swap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.periodic import Periodic, described
from llmroute.proxy.snapshot import ConfigError, ConfigSnapshot, load, signature

log = logging.getLogger("llmroute.proxy.config")


class ConfigWatcher:
    """Polls ``path`` every ``interval`` seconds once started (:meth:`start`, :meth:`stop`); the first
    :meth:`poll` is the caller's, at start-up. ``apply`` gets every valid new config."""

    def __init__(
        self, path: str, apply: Callable[[ConfigSnapshot], None], metrics: ProxyMetrics, interval: float = 1.0
    ) -> None:
        self.path = path
        self.apply = apply
        self.metrics = metrics
        self.interval = interval
        self.current: ConfigSnapshot | None = None
        self.last_error: str | None = None
        self._seen: tuple[tuple[str, int, int, int], ...] = ()
        # a watcher that died silently would freeze the config forever: a failed poll is logged, the next runs
        self.task = Periodic("config poll", self._round, lambda: self.interval, log, wait_first=True)

    def poll(self) -> bool:
        """Load the file if it (or a secret it names) changed; True if a new config was applied."""
        config = self.current.config if self.current is not None else None
        seen = signature(self.path, config)
        if seen == self._seen:
            return False
        try:
            snap = load(self.path)
        except ConfigError as exc:
            self._seen = seen
            self.metrics.reloads.labels("error").inc()
            self.metrics.config_error.set(1)
            if str(exc) != self.last_error:
                kept = f"keeping config {self.current.hash}" if self.current else "no config to serve yet"
                log.error("refused config %s: %s (%s)", self.path, exc, kept)
            self.last_error = str(exc)
            return False
        self._seen = snap.signature
        try:
            self.apply(snap)
        except Exception as exc:  # e.g. a store URL the client library refuses: keep serving the last one
            # by type and place, never the message: it may quote the store URL with its password
            log.error("could not apply config %s: %s", snap.hash, described(exc))
            self.metrics.reloads.labels("error").inc()
            self.metrics.config_error.set(1)
            self.last_error = f"could not apply: {type(exc).__name__}"
            return False
        self.last_error = None
        self.metrics.reloads.labels("ok").inc()
        self.metrics.config_error.set(0)
        previous = self.current
        self.current = snap
        if previous is None or previous.hash != snap.hash:  # served or not: see llmroute.proxy.delivery
            log.info("config file %s holds %s for route %s", self.path, snap.hash, snap.route)
        return True

    async def _round(self) -> None:
        self.poll()

    def start(self) -> None:
        self.task.start()

    async def stop(self) -> None:
        await self.task.stop()
