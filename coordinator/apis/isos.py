"""AttachIsoToVmInstance / DetachIsoFromVmInstance (:mod:`coordinator.services.isos`)."""

from __future__ import annotations

from agentlib.types import Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services import isos


class AttachIsoMsg(ApiMessage):
    vm_instance_uuid: Uuid
    iso_uuid: Uuid


class DetachIsoMsg(ApiMessage):
    vm_instance_uuid: Uuid


@api("AttachIsoToVmInstance", long=True)
def attach_iso(msg: AttachIsoMsg, ctx: Context, deadline: Deadline) -> dict:
    """Insert an ISO into the VM's cdrom drive (at once if it runs, else at start)."""
    isos.attach(ctx, msg.vm_instance_uuid, msg.iso_uuid, deadline)
    return inventory_reply(ctx, "vm", msg.vm_instance_uuid)


@api("DetachIsoFromVmInstance", long=True)
def detach_iso(msg: DetachIsoMsg, ctx: Context, deadline: Deadline) -> dict:
    """Eject the VM's ISO (the drive stays, empty)."""
    isos.detach(ctx, msg.vm_instance_uuid, deadline)
    return inventory_reply(ctx, "vm", msg.vm_instance_uuid)
