"""Local storage volume migration (ZStack 1.0): move a stopped VM's root volume (or a detached
data volume) on local storage to another host of the storage's clusters; the VM then
starts there. The source host's kvmagent copies the volume with its backing chain (the
image cache) over ssh; the coordinator first authorizes that agent's key on the
destination, and records the copied cache there, so later VMs on it reuse the image."""

from __future__ import annotations

import logging

from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.jobs import Deadline
from coordinator.repos.images import ImageCaches
from coordinator.services import backends
from coordinator.services.lookup import require

log = logging.getLogger(__name__)


def migrate_volume(ctx: Context, volume: dict, dest: dict, deadline: Deadline) -> None:
    ps = ctx.db.get("primary_storage", volume["ps_uuid"])
    backend = backends.primary(ps)
    if not backend.per_host:
        raise ApiError(f"volumeUuid: volume {volume['name']} is on {ps['type']}, not local "
                       "storage")
    if volume["host_uuid"] == dest["uuid"]:
        raise ApiError(f"destHostUuid: volume {volume['name']} is on {dest['name']} already")
    if not ctx.db.find("ps_cluster", "ps_uuid = ? AND cluster_uuid = ?",
                       (ps["uuid"], dest["cluster_uuid"])):
        raise ApiError(f"destHostUuid: host {dest['name']}'s cluster is not attached to "
                       f"primary storage {ps['name']}")
    if dest["status"] != "Connected":
        raise ApiError(f"destHostUuid: host {dest['name']} is {dest['status']}")
    vm = ctx.db.get("vm", volume["vm_uuid"]) if volume["vm_uuid"] else None
    if volume["type"] == "Root" and vm["state"] != "Stopped":
        raise ApiError(f"volumeUuid: VM {vm['name']} is {vm['state']}: stop it first")
    if volume["type"] == "Data" and vm is not None:
        raise ApiError(f"volumeUuid: volume {volume['name']} is attached: detach it first")
    source = ctx.db.get("host", volume["host_uuid"])
    try:
        backend.copy_to_host(ctx, volume, source, dest, vm["uuid"] if vm else None,
                             deadline)
    except AgentCallError as exc:
        raise ApiError(f"moving volume {volume['name']} from {source['name']} to "
                       f"{dest['name']}: {exc}") from None
    with ctx.db.tx():
        ctx.db.update("volume", volume["uuid"], host_uuid=dest["uuid"])
        if vm is not None:
            ctx.db.update("vm", vm["uuid"], last_host_uuid=dest["uuid"])
        for cache in ctx.db.find("image_cache", "ps_uuid = ? AND host_uuid = ? AND "
                                 "image_uuid = ?", (ps["uuid"], source["uuid"],
                                                    volume["root_image_uuid"] or "")):
            ImageCaches(ctx.db).copy_to_host(cache, dest["uuid"], new_uuid())
    try:
        backend.delete_volume(ctx, volume["install_path"], source)
    except AgentCallError as exc:
        log.warning("volume %s moved; its old copy on %s stays: %s", volume["uuid"],
                    source["name"], exc)
    log.info("volume %s moved from %s to %s", volume["uuid"], source["name"], dest["name"])


def migrate_locked(ctx: Context, volume_uuid: str, dest_uuid: str,
                   deadline: Deadline) -> None:
    """:func:`migrate_volume` under the volume's lock (and its VM's)."""
    volume = require(ctx, "volume", volume_uuid, "volumeUuid")
    dest = require(ctx, "host", dest_uuid, "destHostUuid")
    locks = [f"volume:{volume['uuid']}"] + ([f"vm:{volume['vm_uuid']}"]
                                             if volume["vm_uuid"] else [])
    with ctx.locks.hold(*locks):
        migrate_volume(ctx, ctx.db.get("volume", volume["uuid"]), dest, deadline)
