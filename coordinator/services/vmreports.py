"""What a host says of its VMs on its own: a report (a guest powered off, qemu crashed, a
VM started by hand) or, on its connect, the VMs it runs (``/vm/vmsync``). The VM's row
follows at once (ZStack 0.9's real-time state capture, not a poll), and so does the
capacity its host lends it; a NeverStop VM that stopped on its own is started again.
"""

from __future__ import annotations

import logging

from coordinator import allocator
from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.services import hosts
from coordinator.services.failover import Failover
from coordinator.services.vmstate import REPORTED, VmState, set_state

log = logging.getLogger(__name__)


class VmReports:
    def __init__(self, ctx: Context, failover: Failover):
        self.ctx = ctx
        self.failover = failover

    def sync_host(self, ctx: Context, host_uuid: str) -> None:
        """On connect, the host's VMs as it runs them (``/vm/vmsync``) replace what the
        database last heard: a VM the database has Running there that the host does not
        run (the host rebooted, or lost it while the coordinator was down) is Stopped,
        and a NeverStop VM is started again, as if the host had reported it."""
        host = ctx.db.get("host", host_uuid)
        try:
            states = hosts.kvm(ctx, host).vm_sync().states
        except AgentCallError as exc:
            log.warning("host %s: no VM sync after connect: %s", host["name"], exc)
            return
        running = ctx.db.find("vm", "host_uuid = ? AND state = 'Running'", (host_uuid,))
        for vm in running:
            state = states.get(vm["uuid"], "Stopped")
            if state in ("Stopped", "Crashed"):
                log.warning("vm %s (%s) is not running on host %s after its connect: %s",
                            vm["name"], vm["uuid"], host["name"], state)
                self.reported({"vmUuid": vm["uuid"], "vmState": state,
                               "hostUuid": host_uuid})
        known = {vm["uuid"] for vm in running}
        for vm_uuid, state in states.items():
            if state == "Running" and vm_uuid not in known:
                self.reported({"vmUuid": vm_uuid, "vmState": state, "hostUuid": host_uuid})

    def reported(self, body: dict) -> None:
        """A VM changed state on its own: the row follows, and so does the capacity its
        host lends it. While an API works on the VM, the API's outcome wins."""
        vm_uuid, state, host = body.get("vmUuid"), body.get("vmState"), body.get("hostUuid")
        if not isinstance(vm_uuid, str) or state not in REPORTED:
            log.warning("VM report without vmUuid/vmState: %s", body)
            return
        try:
            with self.ctx.locks.hold(f"vm:{vm_uuid}", timeout=0):
                self._apply(vm_uuid, state, host)
        except TimeoutError:
            log.info("vm %s reported %s while an API works on it: the API decides",
                     vm_uuid, state)

    def _apply(self, vm_uuid: str, state: str, host: str | None) -> None:
        rows = self.ctx.db.find("vm", "uuid = ?", (vm_uuid,))
        if not rows or rows[0]["state"] in (VmState.DESTROYED, VmState.EXPUNGING):
            return
        vm = rows[0]
        if vm["host_uuid"] not in (None, host):
            log.info("vm %s: report from host %s, but it runs on %s: ignored", vm_uuid,
                     host, vm["host_uuid"])
            return
        was_running = vm["state"] == "Running" and vm["host_uuid"]
        if state in ("Stopped", "Crashed") and was_running:
            allocator.release(self.ctx, vm["host_uuid"], vm["cpu_num"], vm["memory_size"])
            set_state(self.ctx, vm_uuid, VmState(state), host_uuid=None)
            if vm["ha_level"] == "NeverStop":
                self.failover.restart_in_place(vm_uuid)
        elif state == "Running" and not was_running and host:
            try:
                allocator.take(self.ctx, self.ctx.db.get("host", host), vm["cpu_num"],
                               vm["memory_size"])
            except ApiError as exc:
                log.warning("vm %s runs on %s beyond its capacity: %s", vm_uuid, host, exc)
            set_state(self.ctx, vm_uuid, VmState(state), host_uuid=host, last_host_uuid=host)
        else:
            set_state(self.ctx, vm_uuid, VmState(state))
        log.info("vm %s is %s (reported by host %s)", vm_uuid, state, host)
