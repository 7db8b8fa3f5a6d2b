"""Zones, clusters, offerings, global configs and system tags: rows with their rules."""

from __future__ import annotations

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.services.lookup import require


def create_zone(ctx: Context, uuid: str, name: str, description: str) -> None:
    ctx.db.insert("zone", {"uuid": uuid, "name": name, "description": description})


def delete_zone(ctx: Context, uuid: str) -> None:
    """Delete an empty zone (its clusters, storages and networks must go first)."""
    require(ctx, "zone", uuid, "uuid")
    for table in ("cluster", "primary_storage", "l2_network"):
        if ctx.db.find(table, "zone_uuid = ?", (uuid,)):
            raise ApiError(f"uuid: zone {uuid} still has a {table.replace('_', ' ')}"
                           "; delete those first")
    ctx.db.delete("zone", uuid)


def create_cluster(ctx: Context, uuid: str, zone_uuid: str, name: str, description: str,
                   hypervisor_type: str) -> None:
    require(ctx, "zone", zone_uuid, "zoneUuid")
    ctx.db.insert("cluster", {"uuid": uuid, "name": name, "zone_uuid": zone_uuid,
                              "description": description, "hypervisor_type": hypervisor_type})


def delete_cluster(ctx: Context, uuid: str) -> None:
    """Delete a cluster with no hosts (attachments to storages and L2s go with it)."""
    require(ctx, "cluster", uuid, "uuid")
    if ctx.db.find("host", "cluster_uuid = ?", (uuid,)):
        raise ApiError(f"uuid: cluster {uuid} still has hosts; delete them first")
    ctx.db.delete("cluster", uuid)


def create_instance_offering(ctx: Context, row: dict, allocator_strategy: str | None) -> None:
    """``row`` with the strategy, if any, checked against the global config's values."""
    if allocator_strategy:
        ctx.gconf.defs[("host", "allocator.strategy")].parse(allocator_strategy)
        row = {**row, "allocator_strategy": allocator_strategy}
    ctx.db.insert("instance_offering", row)


def create_disk_offering(ctx: Context, row: dict) -> None:
    ctx.db.insert("disk_offering", row)


def update_global_config(ctx: Context, category: str, name: str, value: str) -> dict:
    """The changed config's row; an unknown name or a bad value is an ApiError."""
    try:
        return ctx.gconf.update(category, name, value)
    except KeyError as exc:
        raise ApiError(f"name: {exc.args[0]}") from None
    except ValueError as exc:
        raise ApiError(str(exc)) from None


def create_system_tag(ctx: Context, resource_uuid: str, resource_type: str, tag: str) -> str:
    uuid = new_uuid()
    ctx.db.insert("system_tag", {"uuid": uuid, "resource_uuid": resource_uuid,
                                 "resource_type": resource_type, "tag": tag})
    return uuid


def delete_tag(ctx: Context, uuid: str) -> None:
    ctx.db.delete("system_tag", uuid)
