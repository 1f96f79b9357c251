"""Leader election on a ``coordination.k8s.io/v1`` Lease, so that of several operator pods exactly one acts.

Built on the Kubernetes client's own ``kubernetes.leaderelection`` (client-go's algorithm: a candidate takes
the Lease when it is free or its holder has not renewed it for ``lease_seconds``; the holder renews it every
``retry_seconds`` and gives up when it could not renew for ``renew_deadline_seconds``). What this module adds:

- an identity per process (``<pod name>_<random>``), so a restarted container is a new candidate and never
  mistakes the dead process's Lease for its own;
- **release** on a normal stop: the holder writes the Lease free (no holder), and a standby takes it on its
  next attempt instead of waiting ``lease_seconds`` (the library has no release);
- after release, or once the Lease is lost, this process never writes the Lease again;
- **fencing** by exit: a holder that loses the Lease calls ``on_lost`` (the operator exits at once, as
  client-go's users do), so two operators never act together;
- **an unreachable API is a failed attempt, never the end of the campaign**: the library catches only
  ``ApiException``, so a refused connection or a timeout would end its thread silently — a standby that
  can never take over, or a holder that stops renewing but goes on acting. Here every Lease call has a
  timeout of one retry period and a network failure counts as a failed attempt (a standby tries again, a
  holder gives up at its renew deadline and calls ``on_lost``); should the campaign thread end any other
  way, ``on_lost`` is called too;
- the library's per-attempt INFO lines are kept out of the log; acquisition and loss are logged once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from llmroute.k8s.failures import API_UNREACHABLE

log = logging.getLogger("llmroute.leader")
logging.getLogger("leaderelection").setLevel(logging.WARNING)


@dataclass(frozen=True)
class ElectionSettings:
    """Timing in whole seconds (client-go's ``LeaseDuration``, ``RenewDeadline``, ``RetryPeriod``; the Lease
    stores whole seconds).

    A crashed holder is replaced within about ``lease_seconds + 2 * retry_seconds``; a holder that stops
    normally within ``retry_seconds``. Raises ``ValueError`` unless
    lease > renew deadline > 1.2 x retry >= 1.2.
    """

    lease_name: str
    namespace: str
    lease_seconds: int = 8
    renew_deadline_seconds: int = 6
    retry_seconds: int = 1

    def __post_init__(self) -> None:
        if not self.lease_seconds > self.renew_deadline_seconds > 1.2 * self.retry_seconds >= 1.2:
            raise ValueError(
                "leader election needs lease > renew deadline > 1.2 x retry period, got "
                f"{self.lease_seconds}/{self.renew_deadline_seconds}/{self.retry_seconds} s"
            )


def identity(pod_name: str) -> str:
    """A candidate's identity: the pod's name (what ``kubectl get lease`` shows) and a per-process suffix."""
    return f"{pod_name}_{uuid.uuid4().hex[:8]}"


class _Lock(LeaseLock):  # type: ignore[misc]
    """The library's LeaseLock on llmroute's API client, that stops writing once released or lost, and
    whose every call has a ``timeout`` (seconds) and reports an unreachable API as a failed attempt."""

    def __init__(self, api: client.ApiClient, name: str, namespace: str, who: str, timeout: float) -> None:
        super().__init__(name, namespace, who)
        self.api_instance = client.CoordinationV1Api(api)
        self.mutex = threading.Lock()
        self.closed = False
        self.timeout = timeout

    def get(self, name: str, namespace: str) -> tuple[bool, Any]:
        try:
            lease = self.api_instance.read_namespaced_lease(name, namespace, _request_timeout=self.timeout)
        except client.ApiException as exc:
            return False, exc
        except API_UNREACHABLE as exc:  # the library reads the error's body and reason: give it an API error
            return False, client.ApiException(status=0, reason=f"API unreachable ({type(exc).__name__})")
        self.lease_reference = lease
        return True, self.get_lock_object(lease)

    def create(self, name: str, namespace: str, election_record: Any) -> bool:
        with self.mutex:
            if self.closed:
                return False
            body = client.V1Lease(metadata={"name": name}, spec=self.get_lease_spec(election_record))
            try:
                self.lease_reference = self.api_instance.create_namespaced_lease(
                    namespace, body, _request_timeout=self.timeout
                )
            except (client.ApiException, *API_UNREACHABLE):
                return False
            return True

    def update(self, name: str, namespace: str, updated_record: Any) -> bool:
        with self.mutex:
            if self.closed or self.lease_reference is None:
                return False
            self.lease_reference.spec = self.get_lease_spec(updated_record, self.lease_reference.spec)
            try:
                self.api_instance.replace_namespaced_lease(
                    name, namespace, self.lease_reference, _request_timeout=self.timeout
                )
            except (client.ApiException, *API_UNREACHABLE):
                return False
            return True

    def release(self) -> bool:
        """Write the Lease free if this process holds it (guarded by its resourceVersion); close the lock."""
        with self.mutex:
            self.closed = True
            try:
                lease = self.api_instance.read_namespaced_lease(
                    self.name, self.namespace, _request_timeout=self.timeout
                )
            except (client.ApiException, *API_UNREACHABLE):
                return False
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return False
            now = datetime.now(UTC)
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.acquire_time = now
            lease.spec.renew_time = now
            try:
                self.api_instance.replace_namespaced_lease(
                    self.name, self.namespace, lease, _request_timeout=self.timeout
                )
            except (client.ApiException, *API_UNREACHABLE) as exc:
                why = exc.reason if isinstance(exc, client.ApiException) else type(exc).__name__
                log.warning("could not release Lease %s/%s: %s", self.namespace, self.name, why)
                return False
            return True


class LeaderElector:
    """Campaign for the Lease in a background thread; :meth:`wait` until this process leads."""

    def __init__(
        self, api: client.ApiClient, settings: ElectionSettings, who: str, on_lost: Callable[[], None]
    ) -> None:
        self.settings = settings
        self.identity = who
        self.leading = threading.Event()
        self._on_lost = on_lost
        self._lock = _Lock(api, settings.lease_name, settings.namespace, who, settings.retry_seconds)
        config = electionconfig.Config(
            self._lock,
            lease_duration=settings.lease_seconds,
            renew_deadline=settings.renew_deadline_seconds,
            retry_period=settings.retry_seconds,
            onstarted_leading=self._started,
            onstopped_leading=self._stopped,
        )
        self._election = leaderelection.LeaderElection(config)
        self._thread = threading.Thread(target=self._campaign, name="leader-election", daemon=True)

    def start(self) -> LeaderElector:
        log.info(
            "standing by for Lease %s/%s as %s",
            self.settings.namespace,
            self.settings.lease_name,
            self.identity,
        )
        self._thread.start()
        return self

    def wait(self, stop: threading.Event, poll: float = 0.2) -> bool:
        """Block until this process leads (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            if self.leading.wait(poll):
                return True
        return False

    def release(self) -> None:
        """Hand the Lease over (a standby takes it at its next attempt) and stop campaigning."""
        if self._lock.release():
            log.info("released Lease %s/%s", self.settings.namespace, self.settings.lease_name)

    def _campaign(self) -> None:
        """The library's election loop; it returns only once leading has ended (and has then called
        :meth:`_stopped`). Should it end any other way, this process is no longer a candidate: the same."""
        try:
            self._election.run()
        except Exception as exc:  # the loop's own failure, reported by type: it may quote a URL
            log.error("leader election ended by %s", type(exc).__name__)
        self._stopped()

    def _started(self) -> None:
        log.info(
            "acquired Lease %s/%s as %s", self.settings.namespace, self.settings.lease_name, self.identity
        )
        self.leading.set()

    def _stopped(self) -> None:
        if self._lock.closed:
            return  # released on purpose
        self._lock.closed = True
        log.error("lost Lease %s/%s: stopping so that only one operator acts", *self._names())
        self._on_lost()

    def _names(self) -> tuple[str, str]:
        return self.settings.namespace, self.settings.lease_name
