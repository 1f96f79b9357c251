"""Which config the proxy serves when it hears of configs two ways: the mounted file and the API watch.

The file is the boot source and the fallback; the watch (:mod:`llmroute.proxy.kubewatch`) brings the same
ConfigMap seconds after each write, where the kubelet takes about a minute to update the file. Each config
carries a ``generation`` the operator raises with every content change, and the rules are:

- **API**: the ConfigMap as stored now is the truth. Its config is served when its generation is newer
  than the one served, when it has the same generation but other content (an edit by hand), or when the
  ConfigMap was recreated (a new ``uid``: its generations start again). An older one is a stale event.
- **File**: served only when its generation is newer than the one served (the watch is behind: the API
  is unreachable, or the proxy runs without one). The file lagging behind the watch — the normal case for
  a minute after every write — therefore never takes the proxy back. When the file changes because a
  Secret it names changed, the served API config is read again so the new keys are used.
- Generation 0 (a config without generations: rendered offline, or written by an older operator) keeps
  the old behaviour for the file — any change is served — and is served from the API when its content
  differs.

No rule looks at the clock or at which source spoke last, so the two sources can never make it flap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from prometheus_client import Counter

from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.periodic import described
from llmroute.proxy.snapshot import ConfigError, ConfigSnapshot, parse

log = logging.getLogger("llmroute.proxy.config")
Source = Literal["file", "api"]


class Delivery:
    """Serve the newest config from either source; ``apply`` swaps a snapshot in (``ProxyApp.apply``)."""

    def __init__(self, apply: Callable[[ConfigSnapshot], None], metrics: ProxyMetrics) -> None:
        self._apply = apply
        self.served: ConfigSnapshot | None = None
        self.source: Source | None = None
        self.file: ConfigSnapshot | None = None  # the file's latest valid config, served or not
        self.api_error: str | None = None
        self._api_text: str | None = None
        self._api_uid: str | None = None
        self.updates = Counter(
            "llmroute_proxy_config_updates_total",
            "Configs heard of, by source and what became of them (applied, stale, error)",
            ["source", "result"],
            registry=metrics.registry,
        )

    @property
    def generation(self) -> int:
        return self.served.config.generation if self.served is not None else 0

    def _serve(self, snap: ConfigSnapshot, source: Source) -> None:
        self._apply(snap)  # raises when it cannot be applied: the caller keeps the last good config
        previous = self.served
        self.served, self.source = snap, source
        self.updates.labels(source, "applied").inc()
        if previous is None or (previous.hash, previous.config.generation) != (
            snap.hash,
            snap.config.generation,
        ):
            generation = snap.config.generation
            log.info(
                "serving config %s (generation %d) of %s from %s", snap.hash, generation, snap.route, source
            )

    def offer_file(self, snap: ConfigSnapshot) -> None:
        """A valid config read from the mounted file (what :class:`~llmroute.proxy.watch.ConfigWatcher`
        applies)."""
        self.file = snap
        served = self.served
        generation = snap.config.generation
        newer = served is None or generation > self.generation
        from_file = served is not None and self.source == "file"
        unordered = from_file and generation == 0  # no generations: any change of the file is served
        same = served is not None and (generation, snap.hash) == (self.generation, served.hash)
        secrets = from_file and same  # the Secrets it names changed
        if newer or unordered or secrets:
            self._serve(snap, "file")
        elif self.source == "api" and self._api_text is not None:
            self._refresh_api()
        else:
            self.updates.labels("file", "stale").inc()

    def _refresh_api(self) -> None:
        """Read the served API config again: the file watcher saw a Secret file change."""
        assert self._api_text is not None and self.served is not None
        try:
            snap = parse(self._api_text)
        except ConfigError as exc:
            log.error("cannot reload the API config's secrets: %s (keeping them)", exc)
            return
        if snap.signature != self.served.signature:
            self._serve(snap, "api")
        else:
            self.updates.labels("file", "stale").inc()

    def offer_api(self, text: str, uid: str) -> bool:
        """The ConfigMap's config as the API has it now (``uid``: the ConfigMap's). True if served."""
        try:
            snap = parse(text)
        except ConfigError as exc:
            self.updates.labels("api", "error").inc()
            if str(exc) != self.api_error:
                kept = f"keeping config {self.served.hash}" if self.served else "no config to serve yet"
                log.error("refused config from the API: %s (%s)", exc, kept)
            self.api_error = str(exc)
            return False
        self.api_error = None
        recreated = self._api_uid is not None and uid != self._api_uid
        self._api_uid = uid
        served = self.served
        generation = snap.config.generation
        newer = served is None or generation > self.generation or recreated
        edited = served is not None and generation == self.generation and snap.hash != served.hash
        if not (newer or edited):
            self.updates.labels("api", "stale").inc()
            if served is not None and snap.hash == served.hash:
                self._api_text, self.source = text, "api"  # the same config: the API now backs it
            return False
        try:
            self._serve(snap, "api")
        except Exception as exc:  # e.g. a store URL the client library refuses: keep serving the last one
            # by type and place, never the message: it may quote the store URL with its password
            log.error("could not apply config %s from the API: %s", snap.hash, described(exc))
            self.updates.labels("api", "error").inc()
            self.api_error = "could not apply the API's config"
            return False
        self._api_text = text
        return True
