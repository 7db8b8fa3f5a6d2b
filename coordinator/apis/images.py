"""Images: AddImage downloads a URL into each named backup storage (long: seed 1.1
gives it 3 hours), then the image is Ready with its size and md5. Deleting, recovering
and expunging images: :mod:`coordinator.apis.imagedeletion`."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field, field_validator

from agentlib.types import DisplayName, Uuid
from coordinator.api import ApiError, ApiMessage, Apis
from coordinator.apis.common import inventory_reply, require
from coordinator.apis.storageagents import CEPH_BS, SFTP_BS, ceph_call, sftp_call
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.jobs import Deadline

log = logging.getLogger(__name__)


class AddImageMsg(ApiMessage):
    name: DisplayName
    url: str = Field(min_length=1, max_length=4096)
    backup_storage_uuids: list[Uuid] = Field(min_length=1)
    format: Literal["qcow2", "raw", "iso"] = "qcow2"
    media_type: Literal["RootVolumeTemplate", "DataVolumeTemplate", "ISO"] = \
        "RootVolumeTemplate"
    platform: Literal["Linux", "Windows", "Other", "Paravirtualization"] = "Linux"
    guest_os_type: str = Field("", max_length=64)
    system: bool = False
    description: str = ""
    resource_uuid: Uuid | None = None

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v.split("://", 1)[0] not in ("http", "https", "file") or "\n" in v:
            raise ValueError(f"must be an http, https or file URL: {v!r}")
        return v


def download_to(ctx: Context, bs: dict, image: dict, url: str, deadline: Deadline) -> dict:
    """Download into one backup storage; the image_bs row says where and how it went."""
    body = {"url": url, "imageUuid": image["uuid"]}
    if bs["type"] == "Ceph":
        path = f"ceph://{bs['config']['poolName']}/{image['uuid']}"
        reply = ceph_call(ctx, bs, f"{CEPH_BS}/image/download", {**body, "installPath": path},
                          deadline)
    else:
        path = f"{bs['url'].rstrip('/')}/images/{image['uuid']}.template"
        reply = sftp_call(ctx, bs, f"{SFTP_BS}/download", {**body, "installPath": path},
                          deadline)
    ctx.db.update_where("image_bs", "image_uuid = ? AND bs_uuid = ?", (image["uuid"],
                        bs["uuid"]), status="Ready", install_path=path)
    return reply


def register(apis: Apis) -> None:
    @apis.register("AddImage", long=True)
    def add_image(msg: AddImageMsg, ctx: Context, deadline: Deadline) -> dict:
        """Download an image (http/https/file URL) into the backup storages named."""
        storages = [require(ctx, "backup_storage", u, f"backupStorageUuids.{i}")
                    for i, u in enumerate(msg.backup_storage_uuids)]
        uuid = msg.resource_uuid or new_uuid()
        ctx.db.insert("image", {"uuid": uuid, "name": msg.name, "url": msg.url,
                                "format": msg.format, "media_type": msg.media_type,
                                "platform": msg.platform, "guest_os_type": msg.guest_os_type,
                                "system": int(msg.system), "description": msg.description,
                                "status": "Downloading"})
        for bs in storages:
            ctx.db.db["image_bs"].insert({"image_uuid": uuid, "bs_uuid": bs["uuid"],
                                          "status": "Downloading"})
        image = ctx.db.get("image", uuid)
        done = []
        for bs in storages:
            try:
                done.append(download_to(ctx, bs, image, msg.url, deadline))
            except ApiError as exc:
                ctx.db.update_where("image_bs", "image_uuid = ? AND bs_uuid = ?",
                                    (uuid, bs["uuid"]), status="Failed")
                log.warning("image %s: download into %s failed: %s", msg.name, bs["name"],
                            exc)
                if not done and bs is storages[-1]:
                    ctx.db.delete("image", uuid)
                    raise ApiError(f"url: {exc}") from None
        first = done[0]
        ctx.db.update("image", uuid, status="Ready", size=first["size"],
                      actual_size=first["actualSize"], md5=first.get("md5Sum", ""),
                      format=first.get("format") or msg.format)
        return inventory_reply(ctx, "image", uuid)
