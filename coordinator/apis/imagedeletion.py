"""DeleteImage, RecoverImage, ExpungeImage by the deletion policy, copy by copy
(:mod:`coordinator.services.imagedeletion`). The reply has the image's inventory, or
nothing once its last copy is gone."""

from __future__ import annotations

from pydantic import Field

from agentlib.types import Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.services import imagedeletion


class DeleteImageMsg(ApiMessage):
    uuid: Uuid
    backup_storage_uuids: list[Uuid] | None = Field(
        None, min_length=1, description="default: every backup storage the image is on")


class ImageCopiesMsg(ApiMessage):
    image_uuid: Uuid
    backup_storage_uuids: list[Uuid] | None = Field(
        None, min_length=1, description="default: every Deleted copy of the image")


def _reply(ctx: Context, image_uuid: str, kept: bool) -> dict:
    return inventory_reply(ctx, "image", image_uuid) if kept else {}


@api("DeleteImage", long=True)
def delete_image(msg: DeleteImageMsg, ctx: Context, deadline) -> dict:
    """Delete an image from backup storages (default: all) as image/deletionPolicy
    says (Direct, Delay, Never); copies kept as Deleted can be recovered."""
    return _reply(ctx, msg.uuid, imagedeletion.delete(ctx, msg.uuid,
                                                      msg.backup_storage_uuids))


@api("RecoverImage")
def recover_image(msg: ImageCopiesMsg, ctx: Context) -> dict:
    """Bring Deleted copies of an image (default: all) back to Ready, and the image."""
    return _reply(ctx, msg.image_uuid, imagedeletion.recover(ctx, msg.image_uuid,
                                                             msg.backup_storage_uuids))


@api("ExpungeImage", long=True)
def expunge_image(msg: ImageCopiesMsg, ctx: Context, deadline) -> dict:
    """Delete the bits of Deleted copies of an image (default: all) now."""
    return _reply(ctx, msg.image_uuid, imagedeletion.expunge_deleted(
        ctx, msg.image_uuid, msg.backup_storage_uuids))
