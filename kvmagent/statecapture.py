"""Real-time VM state capture (ZStack 1.0, "VM状态实时捕获").

A change the agent did not cause (``virsh destroy``, a guest powering itself off or
rebooting, qemu killed) is reported to the coordinator at once. Changes the agent makes
itself are announced first with :meth:`StateCapture.expect`, and the matching libvirt
event is swallowed instead of reported as out-of-band.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

from agentlib.reports import Reporter
from kvmagent.drivers.libvirt_conn import DomainEvent

log = logging.getLogger(__name__)

VM_NAME = re.compile(r"[0-9a-f]{32}")

REPORT_VM_START = "/kvm/reportvmstart"
REPORT_VM_SHUTDOWN = "/kvm/reportvmshutdown"
REPORT_VM_REBOOT = "/kvm/reportvmreboot"
REPORT_VM_CRASH = "/kvm/reportvmcrash"
RECONNECT_ME = "/kvm/reconnectme"


def report_for(event: DomainEvent) -> tuple[str, str] | None:
    """The (commandpath, new VM state) an out-of-band event is reported with, if any."""
    if event.kind == "started" and event.detail != "migrated":
        return REPORT_VM_START, "Running"
    if event.kind == "stopped" and event.detail in ("failed", "crashed"):
        return REPORT_VM_CRASH, "Crashed"
    if event.kind == "stopped" and event.detail in ("shutdown", "destroyed"):
        return REPORT_VM_SHUTDOWN, "Stopped"
    if event.kind == "crashed":
        return REPORT_VM_CRASH, "Crashed"
    if event.kind == "reboot":
        return REPORT_VM_REBOOT, "Running"
    return None  # suspend/resume/define/migrate: the coordinator learns them by vmsync


class StateCapture:
    def __init__(self, reporter: Reporter, host_uuid: Callable[[], str | None],
                 grace: float = 10.0):
        self.reporter = reporter
        self.host_uuid = host_uuid
        self.grace = grace
        self._lock = threading.Lock()
        self._expected: list[tuple[str, str, float]] = []  # (vm uuid, event kind, deadline)
        self._incoming: set[str] = set()  # VMs migrating in, not yet resumed here

    def expect(self, vm_uuid: str, *kinds: str, within: float = 0.0) -> None:
        """The agent is about to cause these events on ``vm_uuid``, within ``within``
        seconds (plus the grace): do not report them."""
        deadline = time.monotonic() + within + self.grace
        with self._lock:
            self._expected.extend((vm_uuid, kind, deadline) for kind in kinds)

    def forget(self, vm_uuid: str) -> None:
        """The operation failed: what it expected will not come from it."""
        with self._lock:
            self._expected = [e for e in self._expected if e[0] != vm_uuid]

    @staticmethod
    def is_vm_name(name: str) -> bool:
        """zfleet names its domains after the VM uuid; anything else is not ours."""
        return bool(VM_NAME.fullmatch(name))

    def on_event(self, event: DomainEvent) -> None:
        if not self.is_vm_name(event.name):
            return  # not a zfleet VM
        if self._failed_incoming_migration(event):
            log.info("vm %s: incoming migration failed; it keeps running on its source",
                     event.name)
            return
        if self._consume(event.name, event.kind):
            log.debug("vm %s: %s/%s caused by the agent", event.name, event.kind, event.detail)
            return
        report = report_for(event)
        if report is None:
            return
        path, state = report
        log.info("vm %s: out-of-band %s/%s -> %s", event.name, event.kind, event.detail, path)
        self.reporter.send(path, {"hostUuid": self.host_uuid(), "vmUuid": event.name,
                                  "vmState": state, "reason": event.detail or event.kind})

    def _failed_incoming_migration(self, event: DomainEvent) -> bool:
        """A migration destination starts the VM paused (started/migrated) and resumes
        it when the migration is done (resumed/migrated). If it fails or is aborted,
        the domain here stops with "failed", but the VM still runs on its source: that
        is no crash to report."""
        with self._lock:
            if (event.kind, event.detail) == ("started", "migrated"):
                self._incoming.add(event.name)
            elif event.kind in ("resumed", "stopped") and event.name in self._incoming:
                self._incoming.discard(event.name)
                return event.kind == "stopped" and event.detail == "failed"
        return False

    def _consume(self, vm_uuid: str, kind: str) -> bool:
        now = time.monotonic()
        with self._lock:
            self._expected = [e for e in self._expected if e[2] > now]
            for i, (uuid, expected_kind, _deadline) in enumerate(self._expected):
                if uuid == vm_uuid and expected_kind == kind:
                    del self._expected[i]
                    return True
        return False
