"""AddImage (:mod:`coordinator.services.images`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from agentlib.types import DisplayName, Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.jobs import Deadline
from coordinator.services import images


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


@api("AddImage", long=True)
def add_image(msg: AddImageMsg, ctx: Context, deadline: Deadline) -> dict:
    """Download an image (http/https/file URL) into the backup storages named."""
    uuid = msg.resource_uuid or new_uuid()
    images.add(ctx, uuid, {"name": msg.name, "format": msg.format,
                           "media_type": msg.media_type, "platform": msg.platform,
                           "guest_os_type": msg.guest_os_type, "system": int(msg.system),
                           "description": msg.description},
               msg.url, msg.backup_storage_uuids, deadline)
    return inventory_reply(ctx, "image", uuid)
