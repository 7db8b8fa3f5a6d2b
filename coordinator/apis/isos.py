"""ISOs in a VM's cdrom drive: AttachIsoToVmInstance / DetachIsoFromVmInstance. The ISO
(an image of mediaType ISO) is pulled into the host's cache like a root volume's image,
so this works for VMs on local storage (their host has a cache); Ceph VMs would need RBD
cdroms, which kvmagent does not make yet."""

from __future__ import annotations

from agentlib.types import Uuid
from coordinator.api import ApiError, ApiMessage, Apis
from coordinator.apis import rootvolumes
from coordinator.apis.common import inventory_reply, require
from coordinator.apis.vms import call_host
from coordinator.context import Context
from coordinator.jobs import Deadline


class AttachIsoMsg(ApiMessage):
    vm_instance_uuid: Uuid
    iso_uuid: Uuid


class DetachIsoMsg(ApiMessage):
    vm_instance_uuid: Uuid


def register(apis: Apis) -> None:
    @apis.register("AttachIsoToVmInstance", long=True)
    def attach_iso(msg: AttachIsoMsg, ctx: Context, deadline: Deadline) -> dict:
        """Insert an ISO into the VM's cdrom drive (at once if it runs, else at start)."""
        vm = require(ctx, "vm", msg.vm_instance_uuid, "vmInstanceUuid")
        iso = require(ctx, "image", msg.iso_uuid, "isoUuid")
        if iso["media_type"] != "ISO" or iso["status"] != "Ready":
            raise ApiError(f"isoUuid: image {iso['name']} is a {iso['status']} "
                           f"{iso['media_type']}, not a Ready ISO")
        with ctx.locks.hold(f"vm:{vm['uuid']}"):
            vm = ctx.db.get("vm", vm["uuid"])
            host = ctx.db.get("host", vm["host_uuid"] or vm["last_host_uuid"])
            ps = ctx.db.get("primary_storage", ctx.db.get(
                "volume", vm["root_volume_uuid"])["ps_uuid"])
            if ps["type"] != "LocalStorage":
                raise ApiError(f"vmInstanceUuid: VM {vm['name']} is on {ps['type']}; ISOs "
                               "are attached to VMs on local storage only, for now")
            path = rootvolumes.image_cache(ctx, ps, host, iso, deadline)
            if vm["state"] == "Running":
                call_host(ctx, host, "/vm/iso/attach", {"vmUuid": vm["uuid"], "iso": {
                    "isoUuid": iso["uuid"], "path": path}}, deadline)
            ctx.db.update("vm", vm["uuid"], iso_uuid=iso["uuid"])
        return inventory_reply(ctx, "vm", vm["uuid"])

    @apis.register("DetachIsoFromVmInstance", long=True)
    def detach_iso(msg: DetachIsoMsg, ctx: Context, deadline: Deadline) -> dict:
        """Eject the VM's ISO (the drive stays, empty)."""
        vm = require(ctx, "vm", msg.vm_instance_uuid, "vmInstanceUuid")
        with ctx.locks.hold(f"vm:{vm['uuid']}"):
            vm = ctx.db.get("vm", vm["uuid"])
            if vm["state"] == "Running" and vm["iso_uuid"]:
                call_host(ctx, ctx.db.get("host", vm["host_uuid"]), "/vm/iso/detach",
                          {"vmUuid": vm["uuid"], "isoUuid": vm["iso_uuid"]}, deadline)
            ctx.db.update("vm", vm["uuid"], iso_uuid=None)
        return inventory_reply(ctx, "vm", vm["uuid"])
