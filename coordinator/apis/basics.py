"""Zones, clusters, offerings, global configs and system tags."""

from __future__ import annotations

from pydantic import Field

from agentlib.types import DisplayName, Uuid
from coordinator.api import ApiError, ApiMessage, Apis
from coordinator.apis.common import inventory_reply, require
from coordinator.context import Context
from coordinator.db import new_uuid


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


def register(apis: Apis) -> None:
    @apis.register("CreateZone")
    def create_zone(msg: CreateZoneMsg, ctx: Context) -> dict:
        """Create a zone: the top of the inventory tree (clusters, storages, networks)."""
        uuid = msg.resource_uuid or new_uuid()
        ctx.db.insert("zone", {"uuid": uuid, "name": msg.name,
                               "description": msg.description})
        return inventory_reply(ctx, "zone", uuid)

    @apis.register("DeleteZone")
    def delete_zone(msg: DeleteMsg, ctx: Context) -> dict:
        """Delete an empty zone (its clusters, storages and networks must go first)."""
        require(ctx, "zone", msg.uuid, "uuid")
        for table in ("cluster", "primary_storage", "l2_network"):
            if ctx.db.find(table, "zone_uuid = ?", (msg.uuid,)):
                raise ApiError(f"uuid: zone {msg.uuid} still has a {table.replace('_', ' ')}"
                               "; delete those first")
        ctx.db.delete("zone", msg.uuid)
        return {}

    @apis.register("CreateCluster")
    def create_cluster(msg: CreateClusterMsg, ctx: Context) -> dict:
        """Create a KVM cluster in a zone."""
        require(ctx, "zone", msg.zone_uuid, "zoneUuid")
        uuid = msg.resource_uuid or new_uuid()
        ctx.db.insert("cluster", {"uuid": uuid, "name": msg.name, "zone_uuid": msg.zone_uuid,
                                  "description": msg.description,
                                  "hypervisor_type": msg.hypervisor_type})
        return inventory_reply(ctx, "cluster", uuid)

    @apis.register("DeleteCluster")
    def delete_cluster(msg: DeleteMsg, ctx: Context) -> dict:
        """Delete a cluster with no hosts (attachments to storages and L2s go with it)."""
        require(ctx, "cluster", msg.uuid, "uuid")
        if ctx.db.find("host", "cluster_uuid = ?", (msg.uuid,)):
            raise ApiError(f"uuid: cluster {msg.uuid} still has hosts; delete them first")
        ctx.db.delete("cluster", msg.uuid)
        return {}

    @apis.register("CreateInstanceOffering")
    def create_instance_offering(msg: CreateInstanceOfferingMsg, ctx: Context) -> dict:
        """Create an instance offering: CPUs and memory of a VM."""
        uuid = msg.resource_uuid or new_uuid()
        row = {"uuid": uuid, "name": msg.name, "description": msg.description,
               "cpu_num": msg.cpu_num, "cpu_speed": msg.cpu_speed,
               "memory_size": msg.memory_size}
        if msg.allocator_strategy:
            ctx.gconf.defs[("host", "allocator.strategy")].parse(msg.allocator_strategy)
            row["allocator_strategy"] = msg.allocator_strategy
        ctx.db.insert("instance_offering", row)
        return inventory_reply(ctx, "instance_offering", uuid)

    @apis.register("CreateDiskOffering")
    def create_disk_offering(msg: CreateDiskOfferingMsg, ctx: Context) -> dict:
        """Create a disk offering: the size of a data volume (or of an ISO VM's root)."""
        uuid = msg.resource_uuid or new_uuid()
        ctx.db.insert("disk_offering", {"uuid": uuid, "name": msg.name,
                                        "description": msg.description,
                                        "disk_size": msg.disk_size})
        return inventory_reply(ctx, "disk_offering", uuid)

    @apis.register("UpdateGlobalConfig")
    def update_global_config(msg: UpdateGlobalConfigMsg, ctx: Context) -> dict:
        """Change a global config (QueryGlobalConfig lists them with their defaults)."""
        try:
            row = ctx.gconf.update(msg.category, msg.name, msg.value)
        except KeyError as exc:
            raise ApiError(f"name: {exc.args[0]}") from None
        except ValueError as exc:
            raise ApiError(str(exc)) from None
        return {"inventory": {"category": row["category"], "name": row["name"],
                              "value": row["value"], "defaultValue": row["default_value"],
                              "description": row["description"]}}

    @apis.register("CreateSystemTag")
    def create_system_tag(msg: CreateSystemTagMsg, ctx: Context) -> dict:
        """Tag a resource (``userdata::``, ``sshkey::``, ``staticIp::``...)."""
        uuid = new_uuid()
        ctx.db.insert("system_tag", {"uuid": uuid, "resource_uuid": msg.resource_uuid,
                                     "resource_type": msg.resource_type, "tag": msg.tag})
        return inventory_reply(ctx, "system_tag", uuid)

    @apis.register("DeleteTag")
    def delete_tag(msg: DeleteMsg, ctx: Context) -> dict:
        """Delete a system tag."""
        ctx.db.delete("system_tag", msg.uuid)
        return {}
