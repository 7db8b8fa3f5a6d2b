"""DestroyVmInstance, RecoverVmInstance, ExpungeVmInstance by the deletion policy
(:mod:`coordinator.services.vmdeletion`)."""

from __future__ import annotations

from agentlib.types import Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services import vmdeletion


class VmUuidMsg(ApiMessage):
    uuid: Uuid


@api("DestroyVmInstance", long=True)
def destroy_vm(msg: VmUuidMsg, ctx: Context, deadline: Deadline) -> dict:
    """Destroy a VM as vm/deletionPolicy says (Direct, Delay, Never)."""
    if vmdeletion.destroy(ctx, msg.uuid, deadline) == "Direct":
        return {}
    return inventory_reply(ctx, "vm", msg.uuid)


@api("RecoverVmInstance")
def recover_vm(msg: VmUuidMsg, ctx: Context) -> dict:
    """Bring a Destroyed VM back, Stopped, with its volumes and addresses."""
    vmdeletion.recover(ctx, msg.uuid)
    return inventory_reply(ctx, "vm", msg.uuid)


@api("ExpungeVmInstance", long=True)
def expunge_vm(msg: VmUuidMsg, ctx: Context, deadline: Deadline) -> dict:
    """Remove a Destroyed VM for good now."""
    vmdeletion.expunge_destroyed(ctx, msg.uuid, deadline)
    return {}
