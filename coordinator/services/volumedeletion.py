"""Deleting data volumes by the deletion policy (ZStack 1.0): ``volume/deletionPolicy``
Direct removes the bits and the row at once; Delay (the default) marks the volume
Deleted and keeps its bits (it cannot be attached) for RecoverDataVolume until the
expunger removes it ``volume/expungePeriod`` seconds later (checked every
``volume/expungeInterval``); Never keeps it until ExpungeDataVolume. A volume that was
never instantiated has no bits to keep and goes at once. Root volumes follow their VM
(:mod:`coordinator.services.vmdeletion`).
"""

from __future__ import annotations

import logging

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.services import backends, expunger, gc, snapshots
from coordinator.services.lookup import require

log = logging.getLogger(__name__)


def delete_bits(ctx: Context, volume: dict, calls: gc.HostCalls | None) -> None:
    """A volume's bits: on local storage by its host through ``calls`` (a GC job while
    the host is unreachable); on Ceph through the storage's cephagent, after the host's
    kept commands if there are any (a VM may still hold the image open), or as a GC job
    while no cephagent answers. Its snapshots go first."""
    snapshots.delete_of_volume(ctx, volume)  # RBD refuses to delete an image with some
    ps = ctx.db.get("primary_storage", volume["ps_uuid"])
    what = f"delete volume {volume['uuid']}"
    call, on_host = backends.primary(ps).delete_command(volume["install_path"])
    if on_host:
        if calls is not None:
            calls.send_call(call, what)
    elif calls is None:
        gc.storage_call(ctx, ps, "ps", call.path, call.body, what)
    else:
        calls.after_host(ps, call.path, call.body, what)


def expunge(ctx: Context, volume: dict) -> None:
    """Remove a data volume for good: its bits (see :func:`delete_bits`), then its row.
    A volume whose primary storage is gone from the inventory only loses its row."""
    kept = ""
    if volume["install_path"] and ctx.db.find("primary_storage", "uuid = ?",
                                              (volume["ps_uuid"],)):
        hosts = ctx.db.find("host", "uuid = ?", (volume["host_uuid"],))
        calls = gc.HostCalls(ctx, hosts[0]) if hosts else None
        delete_bits(ctx, volume, calls)
        kept = "; its deletion is kept for GC (host unreachable)" if calls and calls.kept \
            else ""
    ctx.db.delete("volume", volume["uuid"])
    log.info("volume %s (%s) expunged%s", volume["name"], volume["uuid"], kept)


def _deleted(ctx: Context, uuid: str, then: str) -> dict:
    """The volume, which must be Deleted (the caller holds its lock)."""
    volume = ctx.db.get("volume", uuid)
    if volume["status"] != "Deleted":
        raise ApiError(f"uuid: volume {volume['name']} is {volume['status']}, not Deleted"
                       f"{then}")
    return volume


def _expunge_deleted(ctx: Context, uuid: str, timeout: float = -1) -> None:
    with ctx.locks.hold(f"volume:{uuid}", timeout=timeout):
        expunge(ctx, _deleted(ctx, uuid, "; delete it first"))


def expunge_due(ctx: Context) -> int:
    """Expunge the Deleted volumes whose period is over (not under policy Never)."""
    return expunger.expunge_due(
        ctx, "volume",
        lambda before: ctx.db.find("volume", "status = 'Deleted' AND updated <= ?",
                                   (before,)),
        lambda volume: _expunge_deleted(ctx, volume["uuid"], timeout=0))


def delete(ctx: Context, volume_uuid: str) -> bool:
    """Delete a detached data volume as volume/deletionPolicy says; True if it went for
    good, False if it is kept as Deleted (recoverable)."""
    volume = require(ctx, "volume", volume_uuid, "uuid")
    policy = expunger.policy(ctx, "volume")
    with ctx.locks.hold(f"volume:{volume['uuid']}"):
        volume = ctx.db.get("volume", volume["uuid"])
        if volume["type"] != "Data":
            raise ApiError(f"uuid: {volume['name']} is a {volume['type']} volume")
        if volume["vm_uuid"]:
            raise ApiError(f"uuid: volume {volume['name']} is attached to VM "
                           f"{volume['vm_uuid']}; detach it first")
        if policy == "Direct" or not volume["install_path"]:
            expunge(ctx, volume)
            return True
        if volume["status"] != "Deleted":
            ctx.db.update("volume", volume["uuid"], status="Deleted")
    log.info("volume %s (%s) deleted (%s: recoverable)", volume["name"], volume["uuid"],
             policy)
    return False


def recover(ctx: Context, volume_uuid: str) -> None:
    """A Deleted data volume back, Ready (its bits were kept)."""
    require(ctx, "volume", volume_uuid, "uuid")
    with ctx.locks.hold(f"volume:{volume_uuid}"):
        _deleted(ctx, volume_uuid, "")
        ctx.db.update("volume", volume_uuid, status="Ready")


def expunge_deleted(ctx: Context, volume_uuid: str) -> None:
    """Remove a Deleted data volume (bits and row) now."""
    require(ctx, "volume", volume_uuid, "uuid")
    _expunge_deleted(ctx, volume_uuid)
