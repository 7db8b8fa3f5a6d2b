"""DeleteDataVolume, RecoverDataVolume, ExpungeDataVolume by the deletion policy
(:mod:`coordinator.services.volumedeletion`)."""

from __future__ import annotations

from agentlib.types import Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.services import volumedeletion


class VolumeUuidMsg(ApiMessage):
    uuid: Uuid


@api("DeleteDataVolume", long=True)
def delete_data_volume(msg: VolumeUuidMsg, ctx: Context, deadline) -> dict:
    """Delete a detached data volume as volume/deletionPolicy says (Direct, Delay,
    Never); a Delay/Never-deleted one is kept as Deleted for RecoverDataVolume."""
    if volumedeletion.delete(ctx, msg.uuid):
        return {}
    return inventory_reply(ctx, "volume", msg.uuid)


@api("RecoverDataVolume")
def recover_data_volume(msg: VolumeUuidMsg, ctx: Context) -> dict:
    """Bring a Deleted data volume back, Ready (its bits were kept)."""
    volumedeletion.recover(ctx, msg.uuid)
    return inventory_reply(ctx, "volume", msg.uuid)


@api("ExpungeDataVolume", long=True)
def expunge_data_volume(msg: VolumeUuidMsg, ctx: Context, deadline) -> dict:
    """Remove a Deleted data volume (bits and row) now."""
    volumedeletion.expunge_deleted(ctx, msg.uuid)
    return {}
