"""Destroying VMs by the deletion policy (ZStack 1.0): ``vm/deletionPolicy`` Direct
removes everything at once; Delay (the default) stops the VM, frees its host and
keeps its volumes and addresses as a Destroyed VM that RecoverVmInstance brings back
(Stopped) until the expunger removes it ``vm/expungePeriod`` seconds later (checked
every ``vm/expungeInterval``); Never keeps it until ExpungeVmInstance.
"""

from __future__ import annotations

import logging

from coordinator import allocator
from coordinator.api import ApiError
from coordinator.clients import kvmagent
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services import eips, expunger, volumedeletion
from coordinator.services.expunger import EXPUNGE_TIMEOUT
from coordinator.services.gc import HostCalls
from coordinator.services.lookup import require
from coordinator.services.vms import delete_rows, release_commands
from coordinator.services.vmstate import VmState, set_state

log = logging.getLogger(__name__)


def leave_host(ctx: Context, vm: dict, calls: HostCalls | None) -> None:
    """The VM off its host: domain destroyed, capacity, DHCP, user data and EIPs freed
    (kept as GC jobs if the host is unreachable)."""
    if calls is None:
        return
    if vm["host_uuid"]:
        calls.send_call(kvmagent.DESTROY_VM.call(uuid=vm["uuid"]), f"destroy VM {vm['uuid']}")
        allocator.release(ctx, vm["host_uuid"], vm["cpu_num"], vm["memory_size"])
        ctx.db.update("vm", vm["uuid"], host_uuid=None)
    for call in [*release_commands(ctx, vm), *eips.delete_commands(ctx, vm)]:
        calls.send_call(call, f"{call.path} for VM {vm['uuid']}")


def _calls(ctx: Context, vm: dict, deadline: Deadline) -> HostCalls | None:
    host_uuid = vm["host_uuid"] or vm["last_host_uuid"]
    rows = ctx.db.find("host", "uuid = ?", (host_uuid,)) if host_uuid else []
    return HostCalls(ctx, rows[0], max(1.0, deadline.left())) if rows else None


def expunge(ctx: Context, vm: dict, deadline: Deadline) -> None:
    """Remove a VM for good: off its host, its root volume's bits, its rows and IPs.
    What an unreachable host cannot do now becomes GC jobs; the rows go at once."""
    calls = _calls(ctx, vm, deadline)
    leave_host(ctx, vm, calls)
    for vol in ctx.db.find("volume", "vm_uuid = ? AND type = 'Root' AND "
                           "install_path IS NOT NULL", (vm["uuid"],)):
        volumedeletion.delete_bits(ctx, vol, calls)
    delete_rows(ctx, vm["uuid"])
    log.info("VM %s (%s) expunged%s", vm["name"], vm["uuid"],
             f"; {calls.kept} host commands kept for GC" if calls and calls.kept else "")


def _expunge_destroyed(ctx: Context, uuid: str, deadline: Deadline,
                       timeout: float = -1) -> None:
    with ctx.locks.hold(f"vm:{uuid}", timeout=timeout):
        vm = ctx.db.get("vm", uuid)
        if vm["state"] != "Destroyed":
            raise ApiError(f"uuid: VM {vm['name']} is {vm['state']}; destroy it first")
        expunge(ctx, vm, deadline)


def expunge_due(ctx: Context) -> int:
    """Expunge the Destroyed VMs whose period is over (not under policy Never)."""
    return expunger.expunge_due(
        ctx, "vm",
        lambda before: ctx.db.find("vm", "state = 'Destroyed' AND updated <= ?", (before,)),
        lambda vm: _expunge_destroyed(ctx, vm["uuid"], Deadline(EXPUNGE_TIMEOUT, "expunge"),
                                      timeout=0))


def destroy(ctx: Context, vm_uuid: str, deadline: Deadline) -> str:
    """Destroy a VM as vm/deletionPolicy says; the policy."""
    vm = require(ctx, "vm", vm_uuid, "uuid")
    policy = expunger.policy(ctx, "vm")
    with ctx.locks.hold(f"vm:{vm['uuid']}"):
        vm = ctx.db.get("vm", vm["uuid"])
        if policy == "Direct":
            expunge(ctx, vm, deadline)
            return policy
        if vm["state"] != "Destroyed":
            leave_host(ctx, vm, _calls(ctx, vm, deadline))
            set_state(ctx, vm["uuid"], VmState.DESTROYED)
    log.info("VM %s (%s) destroyed (%s: recoverable)", vm["name"], vm["uuid"], policy)
    return policy


def recover(ctx: Context, vm_uuid: str) -> None:
    """A Destroyed VM back, Stopped, with its volumes and addresses."""
    vm = require(ctx, "vm", vm_uuid, "uuid")
    with ctx.locks.hold(f"vm:{vm['uuid']}"):
        if ctx.db.get("vm", vm["uuid"])["state"] != "Destroyed":
            raise ApiError(f"uuid: VM {vm['name']} is {vm['state']}, not Destroyed")
        set_state(ctx, vm["uuid"], VmState.STOPPED, expect=[VmState.DESTROYED])


def expunge_destroyed(ctx: Context, vm_uuid: str, deadline: Deadline) -> None:
    """Remove a Destroyed VM for good now."""
    require(ctx, "vm", vm_uuid, "uuid")
    _expunge_destroyed(ctx, vm_uuid, deadline)
