"""Leader election against a real kube-apiserver when the API becomes unreachable for a while: a standby
keeps campaigning through the outage (and takes the Lease once it is handed over), a holder that can no
longer renew gives up (``on_lost``) within its Lease instead of acting on unseen."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from kubernetes import client

from llmroute.k8s.leader import ElectionSettings, LeaderElector
from llmroute_dev.controlplane import ControlPlane
from llmroute_dev.procs import wait_for

SETTINGS = {"lease_seconds": 8, "renew_deadline_seconds": 6, "retry_seconds": 1}


class Relay:
    """A loopback TCP relay to the apiserver whose line can be cut: :meth:`cut` shuts every open connection
    and hangs up on new ones (counted in :attr:`hung_up`) until :meth:`mend`."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 443)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        self.down = False
        self.hung_up = 0
        self._open: set[socket.socket] = set()
        self._mutex = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._mutex:
                if self.down:
                    self.hung_up += 1
                    conn.close()
                    continue
                try:
                    up = socket.create_connection(self.target, timeout=5)
                except OSError:
                    conn.close()
                    continue
                up.settimeout(None)
                self._open |= {conn, up}
            for src, dst in ((conn, up), (up, conn)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        self._close(src, dst)

    def _close(self, *socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # wakes the other direction's blocked recv
            s.close()
            self._open.discard(s)

    def cut(self) -> None:
        with self._mutex:
            self.down = True
            self._close(*list(self._open))

    def mend(self) -> None:
        with self._mutex:
            self.down = False

    def stop(self) -> None:
        self.cut()
        self.sock.close()


@contextmanager
def relay(cp: ControlPlane) -> Iterator[Relay]:
    line = Relay(cp.url)
    try:
        yield line
    finally:
        line.stop()


def _elector(
    cp: ControlPlane, namespace: str, who: str, lost: threading.Event, via: Relay | None = None
) -> LeaderElector:
    """An elector talking to the apiserver (through ``via`` when given) with the admin token."""
    configuration = client.Configuration()
    configuration.host = via.url if via is not None else cp.url
    configuration.ssl_ca_cert = str(cp.ca_file)
    configuration.api_key = {"authorization": f"Bearer {cp.admin_token}"}
    api = client.ApiClient(configuration)
    return LeaderElector(api, ElectionSettings("llmroute", namespace, **SETTINGS), who, on_lost=lost.set)


def test_a_standby_keeps_campaigning_through_an_api_outage(
    control_plane: ControlPlane, namespace: str
) -> None:
    lost_a, lost_b = threading.Event(), threading.Event()
    a = _elector(control_plane, namespace, "a_1", lost_a).start()
    wait_for(a.leading.is_set, timeout=20, what="a leading")
    with relay(control_plane) as line:
        b = _elector(control_plane, namespace, "b_1", lost_b, via=line).start()
        line.cut()  # every call of b's now fails on the network, none with an API error
        wait_for(lambda: line.hung_up >= 3, timeout=30, what="b's attempts during the outage")
        line.mend()
        a.release()
        wait_for(b.leading.is_set, timeout=20, what="b taking the released Lease after the outage")
        assert not lost_b.is_set() and not lost_a.is_set()
        b.release()


def test_a_holder_that_cannot_renew_gives_up_within_its_lease(
    control_plane: ControlPlane, namespace: str
) -> None:
    lost = threading.Event()
    with relay(control_plane) as line:
        a = _elector(control_plane, namespace, "a_1", lost, via=line).start()
        wait_for(a.leading.is_set, timeout=20, what="a leading")
        line.cut()
        cut = time.monotonic()
        wait_for(lost.is_set, timeout=30, what="on_lost after the API went away")
        gave_up = time.monotonic() - cut
    # a standby may take the Lease lease_seconds after the last renewal; the holder must have stopped by
    # about then (its renew deadline, plus the retry period the library waits before it starts counting)
    assert gave_up <= SETTINGS["lease_seconds"] + SETTINGS["retry_seconds"], gave_up
