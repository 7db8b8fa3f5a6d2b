"""The agent's one connection to libvirtd: event loop, lifecycle events, reconnection.

libvirt needs its default event loop registered before the first connection and run in
a thread; lifecycle events (a VM started, stopped, crashed, rebooted) arrive through it.
When libvirtd goes away the close callback fires; a thread then re-opens the
connection every ``retry_interval`` seconds and calls ``on_reconnect`` when it is back,
so the agent can tell the coordinator (``/kvm/reconnectme``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import libvirt

from agentlib.errors import AgentError

log = logging.getLogger(__name__)

EVENTS = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined",
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started",
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}
STOPPED_DETAILS = {
    libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED: "destroyed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_MIGRATED: "migrated",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_SAVED: "saved",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED: "failed",
    libvirt.VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT: "from-snapshot",
}
STARTED_DETAILS = {
    libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED: "booted",
    libvirt.VIR_DOMAIN_EVENT_STARTED_MIGRATED: "migrated",
    libvirt.VIR_DOMAIN_EVENT_STARTED_RESTORED: "restored",
}


@dataclass(frozen=True)
class DomainEvent:
    name: str  # the domain name: zfleet names domains after the VM uuid
    kind: str  # "started", "stopped", "crashed", "reboot", ...
    detail: str = ""


class LibvirtUnavailable(AgentError):
    """libvirtd cannot be reached right now (the agent keeps trying)."""


_loop_lock = threading.Lock()
_loop_started = False


def _ensure_event_loop() -> None:
    """Register and run libvirt's default event loop (and quiet its stderr) once per
    process."""
    global _loop_started
    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()
        # libvirt prints every error to stderr as well as raising it: the agent logs what
        # it raises, once, with context
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()
        _loop_started = True


def _keep_alive(conn: libvirt.virConnect) -> None:
    """Keepalive probes for a connection to a daemon; a driver running inside this process
    (``test:///default``: the real libvirt API without a hypervisor) has no peer to probe
    and refuses them."""
    try:
        conn.setKeepAlive(5, 3)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        log.info("libvirt connection %s is in-process: no keepalive", conn.getURI())


class LibvirtConnection:
    def __init__(
        self,
        uri: str,
        on_event: Callable[[DomainEvent], None],
        on_reconnect: Callable[[], None] = lambda: None,
        retry_interval: float = 1.0,
    ):
        self.uri = uri
        self.on_event = on_event
        self.on_reconnect = on_reconnect
        self.retry_interval = retry_interval
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.Lock()
        self._closing = False
        self._reconnecting = False
        self.last_error = ""

    def open(self) -> None:
        """Connect now if libvirtd answers; otherwise keep trying in the background."""
        _ensure_event_loop()
        try:
            self._connect()
        except libvirt.libvirtError as exc:
            self.last_error = str(exc)
            log.error("libvirtd at %s not reachable (%s); retrying every %.0fs",
                      self.uri, exc, self.retry_interval)
            self._start_reconnecting()

    @property
    def conn(self) -> libvirt.virConnect:
        conn = self._conn
        if conn is None:
            raise LibvirtUnavailable(f"libvirtd at {self.uri} is not reachable: "
                                     f"{self.last_error or 'connection lost'}; retrying")
        return conn

    def close(self) -> None:
        self._closing = True
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.unregisterCloseCallback()
                conn.close()
            except libvirt.libvirtError:
                pass

    def _connect(self) -> None:
        conn = libvirt.open(self.uri)
        _keep_alive(conn)
        conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                    self._lifecycle, None)
        conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT,
                                    self._reboot, None)
        conn.registerCloseCallback(self._closed, None)
        with self._lock:
            self._conn = conn
        self.last_error = ""
        log.info("connected to libvirtd at %s (libvirt %s)", self.uri, conn.getLibVersion())

    def _closed(self, conn, reason, opaque) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn = None
        if self._closing:
            return
        self.last_error = f"connection closed (reason {reason})"
        log.error("libvirtd at %s went away (reason %s); reconnecting", self.uri, reason)
        self._start_reconnecting()

    def _start_reconnecting(self) -> None:
        with self._lock:
            if self._reconnecting:
                return
            self._reconnecting = True
        threading.Thread(target=self._reconnect_loop, name="libvirt-reconnect",
                         daemon=True).start()

    def _reconnect_loop(self) -> None:
        try:
            while not self._closing:
                time.sleep(self.retry_interval)
                try:
                    self._connect()
                except libvirt.libvirtError as exc:
                    self.last_error = str(exc)
                    continue
                self.on_reconnect()
                return
        finally:
            with self._lock:
                self._reconnecting = False

    def _lifecycle(self, conn, dom, event, detail, opaque) -> None:
        kind = EVENTS.get(event, str(event))
        names = {"stopped": STOPPED_DETAILS, "started": STARTED_DETAILS}.get(kind, {})
        self._dispatch(DomainEvent(dom.name(), kind, names.get(detail, str(detail))))

    def _reboot(self, conn, dom, opaque) -> None:
        self._dispatch(DomainEvent(dom.name(), "reboot"))

    def _dispatch(self, event: DomainEvent) -> None:
        try:
            self.on_event(event)
        except Exception:
            log.exception("handling libvirt event %s failed", event)
