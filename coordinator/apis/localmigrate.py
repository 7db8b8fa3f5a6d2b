"""LocalStorageMigrateVolume (:mod:`coordinator.services.localmigrate`)."""

from __future__ import annotations

from agentlib.types import Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services import localmigrate


class LocalStorageMigrateVolumeMsg(ApiMessage):
    volume_uuid: Uuid
    dest_host_uuid: Uuid


@api("LocalStorageMigrateVolume", long=True)
def local_storage_migrate_volume(msg: LocalStorageMigrateVolumeMsg, ctx: Context,
                                 deadline: Deadline) -> dict:
    """Move a volume on local storage (a stopped VM's root, or a detached data
    volume) to another host; the VM then starts there."""
    localmigrate.migrate_locked(ctx, msg.volume_uuid, msg.dest_host_uuid, deadline)
    return inventory_reply(ctx, "volume", msg.volume_uuid)
