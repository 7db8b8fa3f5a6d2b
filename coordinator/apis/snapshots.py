"""Volume snapshots: create, delete, revert (:mod:`coordinator.services.snapshots`)."""

from __future__ import annotations

from agentlib.types import DisplayName, Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.services import snapshots


class CreateVolumeSnapshotMsg(ApiMessage):
    volume_uuid: Uuid
    name: DisplayName
    description: str = ""
    resource_uuid: Uuid | None = None


class SnapshotUuidMsg(ApiMessage):
    uuid: Uuid


@api("CreateVolumeSnapshot", long=True)
def create_snapshot(msg: CreateVolumeSnapshotMsg, ctx: Context, deadline) -> dict:
    """Snapshot a root or data volume on Ceph, its VM running or not."""
    uuid = msg.resource_uuid or new_uuid()
    snapshots.create(ctx, msg.volume_uuid, uuid, msg.name, msg.description)
    return inventory_reply(ctx, "volume_snapshot", uuid)


@api("DeleteVolumeSnapshot", long=True)
def delete_snapshot(msg: SnapshotUuidMsg, ctx: Context, deadline) -> dict:
    """Delete a snapshot; its RBD snapshot is kept for GC if the storage is unreachable."""
    snapshots.delete(ctx, msg.uuid)
    return {}


@api("RevertVolumeFromSnapshot", long=True)
def revert(msg: SnapshotUuidMsg, ctx: Context, deadline) -> dict:
    """Roll a volume back to a snapshot; its VM must be Stopped (or it detached)."""
    return inventory_reply(ctx, "volume", snapshots.revert(ctx, msg.uuid))
