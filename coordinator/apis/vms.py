"""VM instances: create, start, stop, reboot, migrate, console address, boot order
(:mod:`coordinator.services.vms`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agentlib.types import DisplayName, Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services import vms


class CreateVmInstanceMsg(ApiMessage):
    name: DisplayName
    instance_offering_uuid: Uuid
    image_uuid: Uuid
    l3_network_uuids: list[Uuid] = Field(min_length=1)
    default_l3_network_uuid: Uuid | None = None
    root_disk_offering_uuid: Uuid | None = None
    zone_uuid: Uuid | None = None
    cluster_uuid: Uuid | None = None
    host_uuid: Uuid | None = None
    primary_storage_uuid_for_root_volume: Uuid | None = None
    strategy: Literal["InstantStart", "JustCreate"] = "InstantStart"
    description: str = ""
    resource_uuid: Uuid | None = None


class VmUuidMsg(ApiMessage):
    uuid: Uuid


class StopVmMsg(VmUuidMsg):
    type: Literal["grace", "cold"] = "grace"


class MigrateVmMsg(ApiMessage):
    vm_instance_uuid: Uuid
    host_uuid: Uuid | None = Field(None, description="the destination (default: chosen "
                                   "like a new VM's host, in the VM's cluster)")


class SetVmBootOrderMsg(VmUuidMsg):
    boot_order: list[Literal["HardDisk", "CdRom"]] = Field(min_length=1, max_length=2)


@api("CreateVmInstance", long=True)
def create_vm(msg: CreateVmInstanceMsg, ctx: Context, deadline: Deadline) -> dict:
    """Create a VM from an image on L3 networks, and start it (InstantStart)."""
    return inventory_reply(ctx, "vm", vms.create(ctx, msg, deadline))


@api("StartVmInstance", long=True)
def start_vm(msg: VmUuidMsg, ctx: Context, deadline: Deadline) -> dict:
    """Start a stopped VM on the host it last ran on (where its volumes are usable)."""
    vms.start(ctx, msg.uuid, deadline)
    return inventory_reply(ctx, "vm", msg.uuid)


@api("StopVmInstance", long=True)
def stop_vm(msg: StopVmMsg, ctx: Context, deadline: Deadline) -> dict:
    """Stop a VM: ACPI power-off (grace), forced after the agent's timeout; or cold."""
    vms.stop_locked(ctx, msg.uuid, deadline, cold=msg.type == "cold")
    return inventory_reply(ctx, "vm", msg.uuid)


@api("RebootVmInstance", long=True)
def reboot_vm(msg: VmUuidMsg, ctx: Context, deadline: Deadline) -> dict:
    """Reboot a running VM."""
    vms.reboot(ctx, msg.uuid, deadline)
    return inventory_reply(ctx, "vm", msg.uuid)


@api("MigrateVm", long=True)
def migrate_vm(msg: MigrateVmMsg, ctx: Context, deadline: Deadline) -> dict:
    """Live-migrate a running VM to another host of its cluster (shared storage)."""
    vms.migrate_locked(ctx, msg.vm_instance_uuid, msg.host_uuid, deadline)
    return inventory_reply(ctx, "vm", msg.vm_instance_uuid)


@api("GetVmConsoleAddress")
def console_address(msg: VmUuidMsg, ctx: Context) -> dict:
    """The VNC/SPICE address of a running VM's console."""
    return vms.console_address(ctx, msg.uuid)


@api("SetVmBootOrder")
def set_boot_order(msg: SetVmBootOrderMsg, ctx: Context) -> dict:
    """Boot devices in order (HardDisk, CdRom), used from the next start."""
    vms.set_boot_order(ctx, msg.uuid, list(msg.boot_order))
    return inventory_reply(ctx, "vm", msg.uuid)


@api("GetVmBootOrder")
def get_boot_order(msg: VmUuidMsg, ctx: Context) -> dict:
    """The VM's boot devices in order."""
    return {"order": vms.boot_order(ctx, msg.uuid)}
