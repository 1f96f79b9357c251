"""Kubernetes Events on LLMRoutes, posted the way client-go's recorder posts them: through the
``events.k8s.io/v1`` API, reported by ``llmroute-operator`` from this pod (``reportingInstance``), with an
``action`` that says what the operator was doing, and a repeat of the same Event (same route, type,
reason and note) within ten minutes counted on the first one (``series.count``) instead of posted again.

Posting never raises: an Event that cannot be written is logged at debug level and dropped (the
route's conditions carry the same facts).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

log = logging.getLogger("llmroute.events")
COMPONENT = "llmroute-operator"
SERIES_WINDOW_SECONDS = 600.0
"""Repeats within this window are counted on one Event (client-go's aggregation window)."""

MERGE = "application/merge-patch+json"


def _micro(ts: float) -> datetime:
    """A ``MicroTime``. The client serialises datetimes with ``isoformat()``, which drops the fraction
    when it is zero, and the API then refuses the value: keep at least one microsecond."""
    when = datetime.fromtimestamp(ts, UTC)
    return when if when.microsecond else when.replace(microsecond=1)


def instance_name() -> str:
    """This operator's pod (``LLMROUTE_POD_NAME`` from the downward API), else the host name."""
    return os.environ.get("LLMROUTE_POD_NAME") or socket.gethostname()


@dataclass
class _Posted:
    name: str
    namespace: str
    count: int
    last: float


@dataclass
class EventRecorder:
    """Posts Events on the object whose body (a dict with ``apiVersion``, ``kind``, ``metadata``) is given."""

    api: client.ApiClient
    instance: str = field(default_factory=instance_name)
    clock: Callable[[], float] = time.time
    _posted: dict[tuple[str, str, str, str], _Posted] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, body: Mapping[str, Any], type_: str, reason: str, note: str, action: str) -> None:
        """Post an Event (``type_`` Normal or Warning, CamelCase ``reason``, ``note`` for people, ``action``
        the operator took) on ``body``'s object, or count it on the same Event posted recently."""
        meta = body["metadata"]
        key = (str(meta.get("uid", meta["name"])), type_, reason, note)
        now = self.clock()
        events = client.EventsV1Api(self.api)
        with self._lock:
            self._forget_older_than(now - SERIES_WINDOW_SECONDS)
            seen = self._posted.get(key)
            try:
                if seen is not None:
                    seen.count += 1
                    seen.last = now
                    series = {"series": {"count": seen.count, "lastObservedTime": _micro(now)}}
                    events.patch_namespaced_event(seen.name, seen.namespace, series, _content_type=MERGE)
                    return
                fields = {"type": type_, "reason": reason, "note": note[:1024], "action": action}
                created = events.create_namespaced_event(meta["namespace"], self._body(body, fields, now))
            except client.ApiException as exc:
                if seen is not None and exc.status == 404:  # expired on the server: post it afresh
                    self._posted.pop(key, None)
                log.debug("event %s on %s not posted: %s", reason, meta["name"], exc)
                return
            except Exception as exc:  # never let an Event break a reconcile
                log.debug("event %s on %s not posted: %s", reason, meta["name"], exc)
                return
            self._posted[key] = _Posted(created.metadata.name, meta["namespace"], 1, now)

    def _forget_older_than(self, cutoff: float) -> None:
        for key in [k for k, v in self._posted.items() if v.last < cutoff]:
            del self._posted[key]

    def _body(self, body: Mapping[str, Any], fields: dict[str, str], now: float) -> dict[str, Any]:
        meta = body["metadata"]
        regarding = {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        }
        return {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            # named as client-go names Events: the object's name and the time in nanoseconds, in hex
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
            "eventTime": _micro(now),
            **fields,
            "regarding": {k: v for k, v in regarding.items() if v is not None},
            "reportingController": COMPONENT,
            "reportingInstance": self.instance[:128],
        }
