"""What arrives from the agents on their own (reports) and what the coordinator does on
a clock (host pings): both keep the database in step with the machines.

A VM report (a guest powered off, qemu crashed, a VM started by hand) changes the VM's
state at once: seed 0.9's real-time state capture, not a poll.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from coordinator.apis import hosts
from coordinator.context import Context

log = logging.getLogger(__name__)

VM_REPORTS = ("/kvm/reportvmstart", "/kvm/reportvmshutdown", "/kvm/reportvmreboot",
              "/kvm/reportvmcrash")


class Reports:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._recent: deque[dict] = deque(maxlen=1000)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def receive(self, commandpath: str, body: dict) -> None:
        log.info("report %s: %s", commandpath, body)
        with self._lock:
            self._recent.append({"commandpath": commandpath, "body": body})
        if commandpath in VM_REPORTS:
            self._vm_state(body)
        elif commandpath == "/kvm/reconnectme":
            threading.Thread(target=hosts.reconnect_quietly, args=(self.ctx,
                             str(body.get("hostUuid", ""))), daemon=True).start()

    def recent(self) -> list[dict]:
        with self._lock:
            return list(self._recent)

    def _vm_state(self, body: dict) -> None:
        vm, state, host = body.get("vmUuid"), body.get("vmState"), body.get("hostUuid")
        if not isinstance(vm, str) or state not in ("Running", "Stopped", "Crashed"):
            log.warning("VM report without vmUuid/vmState: %s", body)
            return
        # a report from a host the VM is not on (any more) says nothing about the VM
        n = self.ctx.db.update_where("vm", "uuid = ? AND state NOT IN ('Destroyed', "
                                     "'Expunging') AND (host_uuid = ? OR host_uuid IS NULL)",
                                     (vm, host), state=state,
                                     **({"host_uuid": host} if state == "Running" and host
                                        else {}))
        if n:
            log.info("vm %s is %s (reported by host %s)", vm, state, host)

    # -- on a clock -----------------------------------------------------------------------
    def start_background(self) -> None:
        self._every("host-ping", lambda: self.ctx.gconf.get("host", "ping.interval"),
                    lambda: hosts.ping_all(self.ctx))

    def _every(self, name: str, interval, work) -> None:
        def loop() -> None:
            while not self._stop.wait(interval()):
                try:
                    work()
                except Exception:
                    log.exception("%s failed", name)
        t = threading.Thread(target=loop, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
