"""Primary and backup storages: add, attach, mons, delete (:mod:`coordinator.services.storage`).
Passwords in the messages are for deployment only and never stored."""

from __future__ import annotations

from pydantic import Field, field_validator

from agentlib.types import AbsPath, DisplayName, IPv4, Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.monurl import MonUrlError, parse_mon_url
from coordinator.services import storage
from coordinator.services.storage import CEPHAGENT_PORT, SFTPBSAGENT_PORT


def _mon_urls(v: list[str]) -> list[str]:
    for i, url in enumerate(v):
        try:
            parse_mon_url(url)
        except MonUrlError as exc:
            raise ValueError(f"monUrls.{i}: {exc}") from None
    return v


class AddCephPrimaryStorageMsg(ApiMessage):
    name: DisplayName
    zone_uuid: Uuid
    mon_urls: list[str] = Field(min_length=1)
    root_volume_pool_name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    data_volume_pool_name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    image_cache_pool_name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    agent_port: int = Field(CEPHAGENT_PORT, ge=1, le=65535,
                            description="zfleet: where the mons' cephagent listens")
    description: str = ""
    resource_uuid: Uuid | None = None

    _check_mons = field_validator("mon_urls")(_mon_urls)


class AddCephBackupStorageMsg(ApiMessage):
    name: DisplayName
    mon_urls: list[str] = Field(min_length=1)
    pool_name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    agent_port: int = Field(CEPHAGENT_PORT, ge=1, le=65535)
    description: str = ""
    resource_uuid: Uuid | None = None

    _check_mons = field_validator("mon_urls")(_mon_urls)


class AddLocalPrimaryStorageMsg(ApiMessage):
    name: DisplayName
    zone_uuid: Uuid
    url: AbsPath = Field(description="the directory on each host")
    description: str = ""
    resource_uuid: Uuid | None = None


class AddSftpBackupStorageMsg(ApiMessage):
    name: DisplayName
    hostname: IPv4
    url: AbsPath = Field(description="the directory images are stored under")
    username: str = Field("root", pattern=r"^[a-z_][a-z0-9_-]{0,31}$",
                          description="the ssh user KVM hosts pull images as")
    password: str | None = Field(None, repr=False, description="for deploying the agent "
                                 "with ansible/ (never stored)")
    ssh_port: int = Field(22, ge=1, le=65535)
    agent_port: int = Field(SFTPBSAGENT_PORT, ge=1, le=65535,
                            description="zfleet: where the storage's sftpbsagent listens")
    description: str = ""
    resource_uuid: Uuid | None = None


class PsClusterMsg(ApiMessage):
    primary_storage_uuid: Uuid
    cluster_uuid: Uuid


class BsZoneMsg(ApiMessage):
    backup_storage_uuid: Uuid
    zone_uuid: Uuid


class UuidMsg(ApiMessage):
    uuid: Uuid


class AddMonMsg(ApiMessage):
    uuid: Uuid
    mon_urls: list[str] = Field(min_length=1)

    _check_mons = field_validator("mon_urls")(_mon_urls)


class RemoveMonMsg(ApiMessage):
    uuid: Uuid
    mon_hostnames: list[str] = Field(min_length=1)


@api("AddCephPrimaryStorage", long=True)
def add_ceph_ps(msg: AddCephPrimaryStorageMsg, ctx: Context, deadline) -> dict:
    """Add a Ceph cluster as primary storage: pools checked or created by the agent."""
    uuid = msg.resource_uuid or new_uuid()
    storage.add_ceph_ps(ctx, uuid, msg.zone_uuid, msg.name, msg.description, msg.mon_urls,
                        msg.agent_port, {"rootVolumePoolName": msg.root_volume_pool_name,
                                         "dataVolumePoolName": msg.data_volume_pool_name,
                                         "imageCachePoolName": msg.image_cache_pool_name})
    return inventory_reply(ctx, "primary_storage", uuid)


@api("AddCephBackupStorage", long=True)
def add_ceph_bs(msg: AddCephBackupStorageMsg, ctx: Context, deadline) -> dict:
    """Add a Ceph cluster as backup storage (images in one pool)."""
    uuid = msg.resource_uuid or new_uuid()
    storage.add_ceph_bs(ctx, uuid, msg.name, msg.description, msg.mon_urls, msg.agent_port,
                        msg.pool_name)
    return inventory_reply(ctx, "backup_storage", uuid)


@api("AddSftpBackupStorage", long=True)
def add_sftp_bs(msg: AddSftpBackupStorageMsg, ctx: Context, deadline) -> dict:
    """Add an SFTP backup storage: images as files under ``url`` on ``hostname``."""
    uuid = msg.resource_uuid or new_uuid()
    storage.add_sftp_bs(ctx, {"uuid": uuid, "name": msg.name, "type": "SftpBackupStorage",
                              "url": msg.url, "description": msg.description,
                              "hostname": msg.hostname, "agent_port": msg.agent_port,
                              "config": {"username": msg.username,
                                         "sshPort": msg.ssh_port}})
    return inventory_reply(ctx, "backup_storage", uuid)


@api("AddLocalPrimaryStorage")
def add_local_ps(msg: AddLocalPrimaryStorageMsg, ctx: Context) -> dict:
    """Add local storage: the directory ``url`` on each host of attached clusters."""
    uuid = msg.resource_uuid or new_uuid()
    storage.add_local_ps(ctx, uuid, msg.zone_uuid, msg.name, msg.description, msg.url)
    return inventory_reply(ctx, "primary_storage", uuid)


@api("AttachPrimaryStorageToCluster", long=True)
def attach_ps(msg: PsClusterMsg, ctx: Context, deadline) -> dict:
    """Prepare every connected host of the cluster for the storage, then attach."""
    storage.attach_ps(ctx, msg.primary_storage_uuid, msg.cluster_uuid)
    return inventory_reply(ctx, "primary_storage", msg.primary_storage_uuid)


@api("DetachPrimaryStorageFromCluster")
def detach_ps(msg: PsClusterMsg, ctx: Context) -> dict:
    """Detach: no new volumes there from that cluster (running VMs keep theirs)."""
    storage.detach_ps(ctx, msg.primary_storage_uuid, msg.cluster_uuid)
    return inventory_reply(ctx, "primary_storage", msg.primary_storage_uuid)


@api("AttachBackupStorageToZone")
def attach_bs(msg: BsZoneMsg, ctx: Context) -> dict:
    """Let the zone's VMs use images of this backup storage."""
    storage.attach_bs(ctx, msg.backup_storage_uuid, msg.zone_uuid)
    return inventory_reply(ctx, "backup_storage", msg.backup_storage_uuid)


@api("AddMonToCephPrimaryStorage")
def add_mon_ps(msg: AddMonMsg, ctx: Context) -> dict:
    """Add mons (their cephagent must answer for the same cluster, by fsid)."""
    storage.add_mons(ctx, "primary_storage", msg.uuid, msg.mon_urls)
    return inventory_reply(ctx, "primary_storage", msg.uuid)


@api("AddMonToCephBackupStorage")
def add_mon_bs(msg: AddMonMsg, ctx: Context) -> dict:
    """Add mons (their cephagent must answer for the same cluster, by fsid)."""
    storage.add_mons(ctx, "backup_storage", msg.uuid, msg.mon_urls)
    return inventory_reply(ctx, "backup_storage", msg.uuid)


@api("RemoveMonFromCephPrimaryStorage")
def remove_mon_ps(msg: RemoveMonMsg, ctx: Context) -> dict:
    """Stop using these mons (at least one stays)."""
    storage.remove_mons(ctx, "primary_storage", msg.uuid, msg.mon_hostnames)
    return inventory_reply(ctx, "primary_storage", msg.uuid)


@api("RemoveMonFromCephBackupStorage")
def remove_mon_bs(msg: RemoveMonMsg, ctx: Context) -> dict:
    """Stop using these mons (at least one stays)."""
    storage.remove_mons(ctx, "backup_storage", msg.uuid, msg.mon_hostnames)
    return inventory_reply(ctx, "backup_storage", msg.uuid)


@api("DeletePrimaryStorage")
def delete_ps(msg: UuidMsg, ctx: Context) -> dict:
    """Delete a primary storage no volume is on."""
    storage.delete_ps(ctx, msg.uuid)
    return {}


@api("DeleteBackupStorage")
def delete_bs(msg: UuidMsg, ctx: Context) -> dict:
    """Delete a backup storage from the inventory (its images lose this copy)."""
    storage.delete_bs(ctx, msg.uuid)
    return {}
