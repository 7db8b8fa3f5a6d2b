"""Data volumes: create, attach, detach (:mod:`coordinator.services.volumes`)."""

from __future__ import annotations

from pydantic import Field

from agentlib.types import DisplayName, Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.jobs import Deadline
from coordinator.services import volumes


class CreateDataVolumeMsg(ApiMessage):
    name: DisplayName
    disk_offering_uuid: Uuid
    primary_storage_uuid: Uuid | None = Field(
        None, description="create it there now (default: on the VM's storage at attach)")
    description: str = ""
    resource_uuid: Uuid | None = None


class AttachDataVolumeMsg(ApiMessage):
    vm_instance_uuid: Uuid
    volume_uuid: Uuid


class DetachDataVolumeMsg(ApiMessage):
    uuid: Uuid
    vm_uuid: Uuid | None = None


@api("CreateDataVolume", long=True)
def create_data_volume(msg: CreateDataVolumeMsg, ctx: Context, deadline) -> dict:
    """A data volume of the disk offering's size."""
    uuid = msg.resource_uuid or new_uuid()
    volumes.create_data_volume(ctx, uuid, msg.name, msg.description,
                               msg.disk_offering_uuid, msg.primary_storage_uuid)
    return inventory_reply(ctx, "volume", uuid)


@api("AttachDataVolumeToVm", long=True)
def attach(msg: AttachDataVolumeMsg, ctx: Context, deadline: Deadline) -> dict:
    """Attach a data volume; a running VM sees the disk at once (hot-plug)."""
    volumes.attach(ctx, msg.vm_instance_uuid, msg.volume_uuid, deadline)
    return inventory_reply(ctx, "volume", msg.volume_uuid)


@api("DetachDataVolumeFromVm", long=True)
def detach(msg: DetachDataVolumeMsg, ctx: Context, deadline: Deadline) -> dict:
    """Detach a data volume (unplugged from a running VM first)."""
    volumes.detach(ctx, msg.uuid, deadline)
    return inventory_reply(ctx, "volume", msg.uuid)
