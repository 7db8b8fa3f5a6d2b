"""Volume snapshots (ZStack's CreateVolumeSnapshot, DeleteVolumeSnapshot,
RevertVolumeFromSnapshot; QueryVolumeSnapshot is the generic query), on Ceph primary
storage only: an RBD snapshot ``ceph://pool/volume@<snapshot uuid>`` of a root or data
volume, taken whether its VM runs or not (crash-consistent, as ZStack on Ceph).

A snapshot deleted while no cephagent of its storage answers leaves the database at
once; removing the RBD snapshot is kept as a GC job (issue #8). A volume is expunged
with its snapshots (RBD refuses to delete an image that has some): see
:func:`delete_of_volume`.
"""

from __future__ import annotations

import logging

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.services import backends, gc
from coordinator.services.backends.primary import PrimaryStorage
from coordinator.services.lookup import require
from coordinator.services.storageagents import StorageUnreachable

log = logging.getLogger(__name__)


def _storage(ctx: Context, volume: dict, field: str) -> PrimaryStorage:
    """The volume's primary storage's backend, which must take snapshots."""
    if volume["status"] != "Ready":
        raise ApiError(f"{field}: volume {volume['name']} is {volume['status']}, not Ready")
    ps = ctx.db.get("primary_storage", volume["ps_uuid"])
    backend = backends.primary(ps)
    if not backend.snapshots:
        raise ApiError(f"{field}: volume {volume['name']} is on {ps['type']} primary storage "
                       f"{ps['name']}: volume snapshots there are not built yet (Ceph only)")
    return backend


def _delete_bits(ctx: Context, snapshot: dict) -> bool:
    """Remove the RBD snapshot now (True) or keep that as a GC job (storage unreachable);
    a refusal by a cephagent that answers is raised."""
    rows = ctx.db.find("primary_storage", "uuid = ?", (snapshot["ps_uuid"],))
    if not rows:  # the storage left the inventory: nothing to reach
        return True
    call = backends.primary(rows[0]).snapshot_command("delete", snapshot["install_path"])
    return gc.storage_call(ctx, rows[0], "ps", call.path, call.body,
                           _gc_name(snapshot["uuid"]))


def _gc_name(uuid: str) -> str:
    """The GC job that removes the snapshot's bits (cancelled if it is made again)."""
    return f"delete volume snapshot {uuid}"


def delete_of_volume(ctx: Context, volume: dict) -> int:
    """Delete a volume's snapshots, bits (or GC jobs) and rows, before the volume itself
    goes (the caller holds the volume's lock); how many were kept for GC."""
    kept = 0
    for snapshot in ctx.db.find("volume_snapshot", "volume_uuid = ? ORDER BY created",
                                (volume["uuid"],)):
        kept += not _delete_bits(ctx, snapshot)
        ctx.db.delete("volume_snapshot", snapshot["uuid"])
    return kept


def create(ctx: Context, volume_uuid: str, uuid: str, name: str, description: str) -> None:
    """Snapshot a root or data volume on Ceph, its VM running or not (a repeated call with
    the same ``uuid`` is answered as done)."""
    volume = require(ctx, "volume", volume_uuid, "volumeUuid")
    with ctx.locks.hold(f"volume:{volume['uuid']}"):
        volume = ctx.db.get("volume", volume["uuid"])
        done = ctx.db.find("volume_snapshot", "uuid = ?", (uuid,))
        if done and done[0]["volume_uuid"] == volume["uuid"]:
            return  # a repeated call
        if done:
            raise ApiError(f"resourceUuid: {uuid} is a snapshot of another volume")
        backend = _storage(ctx, volume, "volumeUuid")
        path = f"{volume['install_path']}@{uuid}"
        ctx.db.insert("volume_snapshot", {
            "uuid": uuid, "name": name, "description": description,
            "volume_uuid": volume["uuid"], "ps_uuid": volume["ps_uuid"], "install_path": path,
            "size": volume["size"], "status": "Creating"})
        ctx.db.update_where("gc_job", "status = 'Pending' AND name = ?", (_gc_name(uuid),),
                            status="Cancelled", last_error="the snapshot was made again")
        try:
            size = backend.snapshot(ctx, "create", path)
        except ApiError as exc:
            snapshot = ctx.db.get("volume_snapshot", uuid)
            ctx.db.delete("volume_snapshot", uuid)
            if isinstance(exc, StorageUnreachable):  # it may have been made (a timeout)
                _delete_bits(ctx, snapshot)  # or it would keep the volume from deletion
            raise
        ctx.db.update("volume_snapshot", uuid, status="Ready",
                      size=size or volume["size"])
    log.info("volume %s (%s): snapshot %s taken at %s", volume["name"], volume["uuid"],
             name, path)


def delete(ctx: Context, uuid: str) -> None:
    """Delete a snapshot; its RBD snapshot is kept for GC if the storage is unreachable."""
    snapshot = require(ctx, "volume_snapshot", uuid, "uuid")
    with ctx.locks.hold(f"volume:{snapshot['volume_uuid']}"):
        snapshot = require(ctx, "volume_snapshot", uuid, "uuid")
        now = _delete_bits(ctx, snapshot)
        ctx.db.delete("volume_snapshot", snapshot["uuid"])
    log.info("volume snapshot %s (%s) deleted%s", snapshot["name"], snapshot["uuid"],
             "" if now else "; removing its RBD snapshot is kept for GC (storage "
             "unreachable)")


def revert(ctx: Context, uuid: str) -> str:
    """Roll a volume back to a snapshot; its VM must be Stopped (or it detached). The
    volume's uuid."""
    snapshot = require(ctx, "volume_snapshot", uuid, "uuid")
    volume = ctx.db.get("volume", snapshot["volume_uuid"])
    with ctx.locks.hold(f"volume:{volume['uuid']}",
                        *([f"vm:{volume['vm_uuid']}"] if volume["vm_uuid"] else [])):
        attached = volume["vm_uuid"]
        snapshot = require(ctx, "volume_snapshot", uuid, "uuid")
        volume = ctx.db.get("volume", snapshot["volume_uuid"])
        if volume["vm_uuid"] != attached:
            raise ApiError(f"uuid: volume {volume['name']} was attached or detached "
                           "meanwhile; try again")
        if volume["vm_uuid"]:
            vm = ctx.db.get("vm", volume["vm_uuid"])
            if vm["state"] != "Stopped":
                raise ApiError(f"uuid: volume {volume['name']} is attached to VM "
                               f"{vm['name']} ({vm['uuid']}), which is {vm['state']}; "
                               "stop the VM (or detach the volume) first")
        backend = _storage(ctx, volume, "uuid")
        backend.snapshot(ctx, "rollback", snapshot["install_path"])
    log.info("volume %s (%s) reverted to snapshot %s", volume["name"], volume["uuid"],
             snapshot["name"])
    return volume["uuid"]
