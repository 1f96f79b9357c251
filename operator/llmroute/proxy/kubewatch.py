"""Watch the proxy's own ConfigMap through the Kubernetes API: a small list-watch client on aiohttp.

The proxy already runs on aiohttp, so a watch over it costs a module, not a Kubernetes client library
(and the proxy may not import one: it is its own process). Protocol, as client-go's reflector does it for
one object: ``GET`` the ConfigMap, hand its config over, then ``watch`` it by name
(``fieldSelector=metadata.name=<name>``, which the API authorises against a Role's ``resourceNames``) from
that ``resourceVersion``, with bookmarks, until the server ends the watch (``timeoutSeconds``); then watch
again from the last version seen. ``410 Gone`` (the version is too old) means a fresh ``GET``; any other
failure — no connection, 401/403, a server error — is retried with jittered exponential backoff and a
fresh ``GET``, and is logged once per distinct error. Meanwhile the proxy keeps serving its last good
config and follows the mounted file (:mod:`llmroute.proxy.delivery`).

Credentials are the pod's projected ServiceAccount volume: ``token`` (re-read for every request, so the
kubelet's rotation is followed), ``ca.crt`` (re-read when it changes) and ``namespace``; the server is
``KUBERNETES_SERVICE_HOST``/``_PORT``, as for every in-cluster client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from prometheus_client import Gauge

from llmroute.proxy.metrics import ProxyMetrics
from llmroute.proxy.periodic import BackgroundTask
from llmroute.spec.proxyconfig import CONFIG_KEY

log = logging.getLogger("llmroute.proxy.kubewatch")
WATCH_SECONDS = 300  # the server ends each watch after about this long (jittered); the client re-watches
BACKOFF_SECONDS = (0.5, 30.0)


class WatchError(Exception):
    """The API refused or broke the watch; ``status`` is the HTTP status (0 when there was none)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ApiAccess:
    """Where the API is and the files that authenticate to it (a projected ServiceAccount volume)."""

    server: str  # https://host:port
    credentials: Path  # directory with token, ca.crt, namespace

    @classmethod
    def in_cluster(cls, credentials: str | Path) -> ApiAccess | None:
        """From ``KUBERNETES_SERVICE_HOST``/``_PORT`` and ``credentials``; None outside a cluster."""
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
        directory = Path(credentials)
        if not host or not port or not (directory / "token").exists():
            return None
        host = f"[{host}]" if ":" in host else host
        return cls(f"https://{host}:{port}", directory)

    def namespace(self) -> str:
        return (self.credentials / "namespace").read_text().strip()

    def headers(self) -> dict[str, str]:
        token = (self.credentials / "token").read_text().strip()
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


class ConfigMapWatch:
    """Follow ConfigMap ``name`` and call ``on_config(text, uid)`` with its config on every change."""

    def __init__(
        self,
        access: ApiAccess,
        name: str,
        on_config: Callable[[str, str], object],
        metrics: ProxyMetrics,
        watch_seconds: float = WATCH_SECONDS,
    ) -> None:
        self.access = access
        self.name = name
        self.on_config = on_config
        self.watch_seconds = watch_seconds
        self.last_error: str | None = None
        self.connected = Gauge(
            "llmroute_proxy_config_watch_up",
            "1 while the proxy's watch of its ConfigMap is open",
            registry=metrics.registry,
        )
        self.task = BackgroundTask(self._run, "config watch")
        self._ssl: tuple[tuple[int, int], ssl.SSLContext] | None = None

    def _context(self) -> ssl.SSLContext:
        ca = self.access.credentials / "ca.crt"
        st = ca.stat()
        key = (st.st_ino, st.st_mtime_ns)
        if self._ssl is None or self._ssl[0] != key:
            self._ssl = (key, ssl.create_default_context(cafile=str(ca)))
        return self._ssl[1]

    def _path(self, namespace: str) -> str:
        return f"{self.access.server}/api/v1/namespaces/{quote(namespace)}/configmaps"

    def _deliver(self, obj: dict[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        text = (obj.get("data") or {}).get(CONFIG_KEY)
        if text is None:
            log.error("ConfigMap %s has no %s: keeping the current config", self.name, CONFIG_KEY)
        else:
            self.on_config(text, str(meta.get("uid", "")))
        return str(meta.get("resourceVersion", ""))

    async def _get(self, session: aiohttp.ClientSession, namespace: str) -> str:
        url = f"{self._path(namespace)}/{quote(self.name)}"
        timeout = aiohttp.ClientTimeout(total=15)
        async with session.get(
            url, headers=self.access.headers(), ssl=self._context(), timeout=timeout
        ) as resp:
            if resp.status != 200:
                raise WatchError(f"GET {self.name}: HTTP {resp.status}: {await _reason(resp)}", resp.status)
            return self._deliver(orjson.loads(await resp.read()))

    async def _watch(self, session: aiohttp.ClientSession, namespace: str, version: str) -> str:
        """One watch from ``version`` until the server ends it; returns the last version seen."""
        seconds = int(self.watch_seconds * random.uniform(0.8, 1.0))
        params = {
            "watch": "true",
            "fieldSelector": f"metadata.name={self.name}",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(max(1, seconds)),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=seconds + 30)
        async with session.get(
            self._path(namespace),
            params=params,
            headers=self.access.headers(),
            ssl=self._context(),
            timeout=timeout,
        ) as resp:
            if resp.status != 200:
                raise WatchError(f"watch {self.name}: HTTP {resp.status}: {await _reason(resp)}", resp.status)
            self.connected.set(1)
            self.last_error = None
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        version = self._event(orjson.loads(line), version)
        return version

    def _event(self, event: dict[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            code = int(obj.get("code") or 0)
            raise WatchError(f"watch {self.name}: {obj.get('message', 'error')}", code)
        if kind in ("ADDED", "MODIFIED"):
            return self._deliver(obj)
        if kind == "DELETED":
            log.warning("ConfigMap %s was deleted: keeping the current config", self.name)
        return str((obj.get("metadata") or {}).get("resourceVersion") or version)

    async def _run(self) -> None:
        backoff = BACKOFF_SECONDS[0]
        version = ""
        connector = aiohttp.TCPConnector(limit=2, enable_cleanup_closed=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                try:
                    namespace = self.access.namespace()
                    if not version:
                        version = await self._get(session, namespace)
                    version = await self._watch(session, namespace, version)
                    backoff = BACKOFF_SECONDS[0]
                    continue
                except WatchError as exc:
                    error, status = str(exc), exc.status
                except Exception as exc:  # a watch that dies silently would freeze the config: retry
                    error, status = f"{type(exc).__name__}: {exc}", 0
                finally:
                    self.connected.set(0)
                version = ""  # after any failure: read the object again, then watch from there
                if status != 410 and error != self.last_error:  # 410: the version was too old (normal)
                    log.warning("config watch: %s (following the file; retrying)", error)
                self.last_error = error
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(BACKOFF_SECONDS[1], backoff * 2)

    def start(self) -> None:
        self.task.start()

    async def stop(self) -> None:
        await self.task.stop()


async def _reason(resp: aiohttp.ClientResponse) -> str:
    """The API's Status message, else the start of the body."""
    body = await resp.read()
    with contextlib.suppress(ValueError):
        return str(orjson.loads(body).get("message", ""))[:300]
    return body[:300].decode(errors="replace")
