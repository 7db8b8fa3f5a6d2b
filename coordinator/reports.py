"""What arrives from the agents on their own (``/report``): kept for ``GET /reports``; a
VM report goes to :mod:`coordinator.services.vmreports`, an agent asking to be
connected again (``/kvm/reconnectme``) is reconnected."""

from __future__ import annotations

import logging
import threading
from collections import deque

from coordinator.context import Context
from coordinator.services import hosts
from coordinator.services.vmreports import VmReports

log = logging.getLogger(__name__)

VM_REPORTS = ("/kvm/reportvmstart", "/kvm/reportvmshutdown", "/kvm/reportvmreboot",
              "/kvm/reportvmcrash")


class Reports:
    def __init__(self, ctx: Context, vms: VmReports):
        self.ctx = ctx
        self.vms = vms
        self._recent: deque[dict] = deque(maxlen=1000)
        self._lock = threading.Lock()

    def receive(self, commandpath: str, body: dict) -> None:
        log.info("report %s: %s", commandpath, body)
        with self._lock:
            self._recent.append({"commandpath": commandpath, "body": body})
        if commandpath in VM_REPORTS:
            self.vms.reported(body)
        elif commandpath == "/kvm/reconnectme":
            threading.Thread(target=hosts.reconnect_quietly, args=(self.ctx,
                             str(body.get("hostUuid", ""))), daemon=True).start()

    def recent(self) -> list[dict]:
        with self._lock:
            return list(self._recent)
