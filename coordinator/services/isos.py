"""ISOs in a VM's cdrom drive. The ISO (an image of mediaType ISO) is pulled into the
host's cache like a root volume's image, so this works for VMs on local storage (their
host has a cache); Ceph VMs would need RBD cdroms, which kvmagent does not make yet."""

from __future__ import annotations

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services import backends, rootvolumes
from coordinator.services.lookup import require
from coordinator.services.vms import on_host


def attach(ctx: Context, vm_uuid: str, iso_uuid: str, deadline: Deadline) -> None:
    """Insert an ISO into the VM's cdrom drive (at once if it runs, else at start)."""
    vm = require(ctx, "vm", vm_uuid, "vmInstanceUuid")
    iso = require(ctx, "image", iso_uuid, "isoUuid")
    if iso["media_type"] != "ISO" or iso["status"] != "Ready":
        raise ApiError(f"isoUuid: image {iso['name']} is a {iso['status']} "
                       f"{iso['media_type']}, not a Ready ISO")
    with ctx.locks.hold(f"vm:{vm['uuid']}"):
        vm = ctx.db.get("vm", vm["uuid"])
        host = ctx.db.get("host", vm["host_uuid"] or vm["last_host_uuid"])
        ps = ctx.db.get("primary_storage", ctx.db.get(
            "volume", vm["root_volume_uuid"])["ps_uuid"])
        if not backends.primary(ps).per_host:
            raise ApiError(f"vmInstanceUuid: VM {vm['name']} is on {ps['type']}; ISOs "
                           "are attached to VMs on local storage only, for now")
        path = rootvolumes.image_cache(ctx, ps, host, iso, deadline)
        if vm["state"] == "Running":
            on_host(ctx, host, lambda agent: agent.attach_iso(
                vm_uuid=vm["uuid"], iso={"iso_uuid": iso["uuid"], "path": path},
                wait=deadline.left()))
        ctx.db.update("vm", vm["uuid"], iso_uuid=iso["uuid"])


def detach(ctx: Context, vm_uuid: str, deadline: Deadline) -> None:
    """Eject the VM's ISO (the drive stays, empty)."""
    vm = require(ctx, "vm", vm_uuid, "vmInstanceUuid")
    with ctx.locks.hold(f"vm:{vm['uuid']}"):
        vm = ctx.db.get("vm", vm["uuid"])
        if vm["state"] == "Running" and vm["iso_uuid"]:
            on_host(ctx, ctx.db.get("host", vm["host_uuid"]), lambda agent: agent.detach_iso(
                vm_uuid=vm["uuid"], iso_uuid=vm["iso_uuid"], wait=deadline.left()))
        ctx.db.update("vm", vm["uuid"], iso_uuid=None)
