"""Zones, clusters, offerings, global configs and system tags."""

from __future__ import annotations

from pydantic import Field

from agentlib.types import DisplayName, Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.services import basics


class CreateZoneMsg(ApiMessage):
    name: DisplayName
    description: str = ""
    resource_uuid: Uuid | None = None


class CreateClusterMsg(ApiMessage):
    zone_uuid: Uuid
    name: DisplayName
    description: str = ""
    hypervisor_type: str = Field("KVM", pattern="^KVM$")
    resource_uuid: Uuid | None = None


class DeleteMsg(ApiMessage):
    uuid: Uuid


class CreateInstanceOfferingMsg(ApiMessage):
    name: DisplayName
    description: str = ""
    cpu_num: int = Field(ge=1, le=256)
    cpu_speed: int = Field(1, ge=1)
    memory_size: int = Field(ge=16 << 20, multiple_of=1 << 20, description="bytes, whole MiB")
    allocator_strategy: str | None = None
    resource_uuid: Uuid | None = None


class CreateDiskOfferingMsg(ApiMessage):
    name: DisplayName
    description: str = ""
    disk_size: int = Field(ge=1 << 20, description="bytes")
    resource_uuid: Uuid | None = None


class UpdateGlobalConfigMsg(ApiMessage):
    category: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.]+$")
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.]+$")
    value: str = Field(max_length=256)


class CreateSystemTagMsg(ApiMessage):
    resource_uuid: Uuid
    resource_type: str = Field(pattern=r"^[A-Za-z]+VO$|^[a-z_]+$")
    tag: str = Field(min_length=3, max_length=65536, pattern=r"^[^\n\r\x00]+::[\s\S]*$")


@api("CreateZone")
def create_zone(msg: CreateZoneMsg, ctx: Context) -> dict:
    """Create a zone: the top of the inventory tree (clusters, storages, networks)."""
    uuid = msg.resource_uuid or new_uuid()
    basics.create_zone(ctx, uuid, msg.name, msg.description)
    return inventory_reply(ctx, "zone", uuid)


@api("DeleteZone")
def delete_zone(msg: DeleteMsg, ctx: Context) -> dict:
    """Delete an empty zone (its clusters, storages and networks must go first)."""
    basics.delete_zone(ctx, msg.uuid)
    return {}


@api("CreateCluster")
def create_cluster(msg: CreateClusterMsg, ctx: Context) -> dict:
    """Create a KVM cluster in a zone."""
    uuid = msg.resource_uuid or new_uuid()
    basics.create_cluster(ctx, uuid, msg.zone_uuid, msg.name, msg.description,
                          msg.hypervisor_type)
    return inventory_reply(ctx, "cluster", uuid)


@api("DeleteCluster")
def delete_cluster(msg: DeleteMsg, ctx: Context) -> dict:
    """Delete a cluster with no hosts (attachments to storages and L2s go with it)."""
    basics.delete_cluster(ctx, msg.uuid)
    return {}


@api("CreateInstanceOffering")
def create_instance_offering(msg: CreateInstanceOfferingMsg, ctx: Context) -> dict:
    """Create an instance offering: CPUs and memory of a VM."""
    uuid = msg.resource_uuid or new_uuid()
    basics.create_instance_offering(ctx, {
        "uuid": uuid, "name": msg.name, "description": msg.description,
        "cpu_num": msg.cpu_num, "cpu_speed": msg.cpu_speed, "memory_size": msg.memory_size},
        msg.allocator_strategy)
    return inventory_reply(ctx, "instance_offering", uuid)


@api("CreateDiskOffering")
def create_disk_offering(msg: CreateDiskOfferingMsg, ctx: Context) -> dict:
    """Create a disk offering: the size of a data volume (or of an ISO VM's root)."""
    uuid = msg.resource_uuid or new_uuid()
    basics.create_disk_offering(ctx, {"uuid": uuid, "name": msg.name,
                                      "description": msg.description,
                                      "disk_size": msg.disk_size})
    return inventory_reply(ctx, "disk_offering", uuid)


@api("UpdateGlobalConfig")
def update_global_config(msg: UpdateGlobalConfigMsg, ctx: Context) -> dict:
    """Change a global config (QueryGlobalConfig lists them with their defaults)."""
    row = basics.update_global_config(ctx, msg.category, msg.name, msg.value)
    return {"inventory": {"category": row["category"], "name": row["name"],
                          "value": row["value"], "defaultValue": row["default_value"],
                          "description": row["description"]}}


@api("CreateSystemTag")
def create_system_tag(msg: CreateSystemTagMsg, ctx: Context) -> dict:
    """Tag a resource (``userdata::``, ``sshkey::``, ``staticIp::``...)."""
    uuid = basics.create_system_tag(ctx, msg.resource_uuid, msg.resource_type, msg.tag)
    return inventory_reply(ctx, "system_tag", uuid)


@api("DeleteTag")
def delete_tag(msg: DeleteMsg, ctx: Context) -> dict:
    """Delete a system tag."""
    basics.delete_tag(ctx, msg.uuid)
    return {}
