"""Data volumes: create (on a primary storage at once, or when first attached, as ZStack's
NotInstantiated volumes), attach to a VM (hot-plugged if it runs), detach. Deleting,
recovering and expunging them: :mod:`coordinator.services.volumedeletion`."""

from __future__ import annotations

import logging

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services import backends, rootvolumes
from coordinator.services.lookup import require
from coordinator.services.vms import on_host

log = logging.getLogger(__name__)
MAX_DEVICE_ID = 25  # vdb..vdz


def instantiate(ctx: Context, volume: dict, ps: dict) -> dict:
    """The volume's bits on ``ps`` (on Ceph, an empty RBD image in the data pool)."""
    path = backends.primary(ps).create_data_volume(ctx, volume)
    ctx.db.update("volume", volume["uuid"], ps_uuid=ps["uuid"], install_path=path,
                  status="Ready")
    return ctx.db.get("volume", volume["uuid"])


def _hotplug(ctx: Context, vm: dict, volume: dict, attach: bool, deadline: Deadline) -> None:
    """Plug the volume into the running VM (or unplug it); an error is the host's."""
    host = ctx.db.get("host", vm["host_uuid"])
    ps = ctx.db.get("primary_storage", volume["ps_uuid"])
    fields = {"vm_uuid": vm["uuid"], "volume": rootvolumes.volume_to(ps, volume),
              "wait": deadline.left()}
    on_host(ctx, host, lambda agent: (agent.attach_data_volume if attach
                                      else agent.detach_data_volume)(**fields))


def create_data_volume(ctx: Context, uuid: str, name: str, description: str,
                       offering_uuid: str, ps_uuid: str | None) -> None:
    """A data volume of the disk offering's size, instantiated on ``ps_uuid`` if given."""
    offering = require(ctx, "disk_offering", offering_uuid, "diskOfferingUuid")
    ps = require(ctx, "primary_storage", ps_uuid, "primaryStorageUuid") if ps_uuid else None
    ctx.db.insert("volume", {"uuid": uuid, "name": name, "type": "Data",
                             "description": description, "format": "raw",
                             "disk_offering_uuid": offering["uuid"],
                             "size": offering["disk_size"], "status": "NotInstantiated"})
    if ps is not None:
        try:
            instantiate(ctx, ctx.db.get("volume", uuid), ps)
        except ApiError:
            ctx.db.delete("volume", uuid)
            raise


def attach(ctx: Context, vm_uuid: str, volume_uuid: str, deadline: Deadline) -> None:
    """Attach a data volume; a running VM sees the disk at once (hot-plug)."""
    vm = require(ctx, "vm", vm_uuid, "vmInstanceUuid")
    with ctx.locks.hold(f"vm:{vm['uuid']}", f"volume:{volume_uuid}"):
        volume = require(ctx, "volume", volume_uuid, "volumeUuid")
        vm = ctx.db.get("vm", vm["uuid"])
        if volume["type"] != "Data":
            raise ApiError(f"volumeUuid: {volume['name']} is a {volume['type']} volume")
        if volume["status"] == "Deleted":
            raise ApiError(f"volumeUuid: volume {volume['name']} is Deleted; recover it "
                           "first (RecoverDataVolume)")
        if volume["vm_uuid"] == vm["uuid"]:
            return
        if volume["vm_uuid"]:
            raise ApiError(f"volumeUuid: {volume['name']} is attached to VM "
                           f"{volume['vm_uuid']}")
        if vm["state"] not in ("Running", "Stopped"):
            raise ApiError(f"vmInstanceUuid: VM {vm['name']} is {vm['state']}")
        root_ps = ctx.db.get("primary_storage", ctx.db.get(
            "volume", vm["root_volume_uuid"])["ps_uuid"])
        if volume["status"] == "NotInstantiated":
            volume = instantiate(ctx, volume, root_ps)
        used = {v["device_id"] for v in ctx.db.find("volume", "vm_uuid = ?", (vm["uuid"],))}
        free = [i for i in range(1, MAX_DEVICE_ID + 1) if i not in used]
        if not free:
            raise ApiError(f"vmInstanceUuid: VM {vm['name']} has no free disk slot")
        ctx.db.update("volume", volume["uuid"], vm_uuid=vm["uuid"], device_id=free[0])
        if vm["state"] == "Running":
            try:
                _hotplug(ctx, vm, ctx.db.get("volume", volume["uuid"]), True, deadline)
            except ApiError:
                ctx.db.update("volume", volume["uuid"], vm_uuid=None, device_id=None)
                raise


def detach(ctx: Context, volume_uuid: str, deadline: Deadline) -> None:
    """Detach a data volume (unplugged from a running VM first)."""
    volume = require(ctx, "volume", volume_uuid, "uuid")
    if not volume["vm_uuid"]:
        return
    with ctx.locks.hold(f"vm:{volume['vm_uuid']}", f"volume:{volume['uuid']}"):
        vm = ctx.db.get("vm", volume["vm_uuid"])
        if vm["state"] == "Running":
            _hotplug(ctx, vm, volume, False, deadline)
        ctx.db.update("volume", volume["uuid"], vm_uuid=None, device_id=None)
