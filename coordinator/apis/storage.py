"""Primary and backup storages: Ceph (seed 0.9: one cluster as both, copy-on-write
everywhere), local primary storage and SFTP backup storage; attaching them.

A Ceph storage is driven through the cephagent on one of its mons (``monUrls``,
seed 0.9's ``sshUser:sshPassword@monIp[:sshPort][/?monPort=N]``), an SFTP backup
storage through the sftpbsagent on its host; passwords are for deployment only and
never stored. What VM flows need of them is in :mod:`coordinator.apis.rootvolumes`.
"""

from __future__ import annotations

import logging

from pydantic import Field, field_validator

from agentlib.types import AbsPath, DisplayName, IPv4, Uuid
from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError, ApiMessage, Apis
from coordinator.apis.common import inventory_reply, require
from coordinator.apis.rootvolumes import prepare_host
from coordinator.apis.storageagents import CEPH_BS as BS
from coordinator.apis.storageagents import CEPH_PS as PS
from coordinator.apis.storageagents import SFTP_BS, ceph_call, sftp_call
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.monurl import MonUrlError, parse_mon_url

log = logging.getLogger(__name__)
CEPHAGENT_PORT = 7762
SFTPBSAGENT_PORT = 7171


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


def _capacity(reply: dict) -> dict:
    return {k: reply[c] for k, c in (("total_capacity", "totalCapacity"),
                                     ("available_capacity", "availableCapacity"))
            if reply.get(c) is not None}


def _mons_of(reply: dict) -> list[dict]:
    out = []
    for m in reply.get("mons") or []:
        host, _, port = m["addr"].rpartition(":")
        out.append({"host": host, "port": int(port)})
    return out


def on_host_connect(ctx: Context, host_uuid: str) -> None:
    """A (re)connected host gets the secrets and directories of its cluster's storages."""
    host = ctx.db.get("host", host_uuid)
    for ps in ctx.db.find("primary_storage", "uuid IN (SELECT ps_uuid FROM ps_cluster "
                          "WHERE cluster_uuid = ?)", (host["cluster_uuid"],)):
        try:
            prepare_host(ctx, ps, host)
        except AgentCallError as exc:
            log.warning("host %s: primary storage %s not prepared: %s", host["name"],
                        ps["name"], exc)


def register(apis: Apis) -> None:

    def mon_config(mon_urls: list[str], port: int) -> dict:
        return {"monHosts": [parse_mon_url(u).host for u in mon_urls], "agentPort": port,
                "monUrls": [_without_password(u) for u in mon_urls]}

    @apis.register("AddCephPrimaryStorage", long=True)
    def add_ceph_ps(msg: AddCephPrimaryStorageMsg, ctx: Context, deadline) -> dict:
        """Add a Ceph cluster as primary storage: pools checked or created by the agent."""
        require(ctx, "zone", msg.zone_uuid, "zoneUuid")
        uuid = msg.resource_uuid or new_uuid()
        draft = {"name": msg.name, "config": mon_config(msg.mon_urls, msg.agent_port)}
        pools = {"rootVolumePoolName": msg.root_volume_pool_name,
                 "dataVolumePoolName": msg.data_volume_pool_name,
                 "imageCachePoolName": msg.image_cache_pool_name}
        body = {"uuid": uuid, **{k: v for k, v in pools.items() if v}}
        reply = ceph_call(ctx, draft, f"{PS}/init", body)
        config = {**draft["config"], "secretUuid": uuid, "userKey": reply["userKey"],
                  "mons": _mons_of(reply), "rootVolumePoolName": reply["rootVolumePoolName"],
                  "dataVolumePoolName": reply["dataVolumePoolName"],
                  "imageCachePoolName": reply["imageCachePoolName"]}
        ctx.db.insert("primary_storage", {"uuid": uuid, "name": msg.name, "type": "Ceph",
                                          "zone_uuid": msg.zone_uuid, "url": "ceph",
                                          "description": msg.description,
                                          "fsid": reply["fsid"], "config": config,
                                          **_capacity(reply)})
        return inventory_reply(ctx, "primary_storage", uuid)

    @apis.register("AddCephBackupStorage", long=True)
    def add_ceph_bs(msg: AddCephBackupStorageMsg, ctx: Context, deadline) -> dict:
        """Add a Ceph cluster as backup storage (images in one pool)."""
        uuid = msg.resource_uuid or new_uuid()
        draft = {"name": msg.name, "config": mon_config(msg.mon_urls, msg.agent_port)}
        body = {"uuid": uuid, **({"poolName": msg.pool_name} if msg.pool_name else {})}
        reply = ceph_call(ctx, draft, f"{BS}/init", body)
        config = {**draft["config"], "poolName": reply["poolName"]}
        ctx.db.insert("backup_storage", {"uuid": uuid, "name": msg.name, "type": "Ceph",
                                         "url": "ceph", "description": msg.description,
                                         "hostname": draft["config"]["monHosts"][0],
                                         "agent_port": msg.agent_port, "fsid": reply["fsid"],
                                         "config": config, **_capacity(reply)})
        return inventory_reply(ctx, "backup_storage", uuid)

    @apis.register("AddSftpBackupStorage", long=True)
    def add_sftp_bs(msg: AddSftpBackupStorageMsg, ctx: Context, deadline) -> dict:
        """Add an SFTP backup storage: images as files under ``url`` on ``hostname``."""
        uuid = msg.resource_uuid or new_uuid()
        row = {"uuid": uuid, "name": msg.name, "type": "SftpBackupStorage", "url": msg.url,
               "description": msg.description, "hostname": msg.hostname,
               "agent_port": msg.agent_port,
               "config": {"username": msg.username, "sshPort": msg.ssh_port}}
        reply = sftp_call(ctx, row, f"{SFTP_BS}/connect", {
            "storagePath": msg.url, "uuid": uuid, "sendCommandUrl": ctx.report_url})
        ctx.db.insert("backup_storage", {**row, **_capacity(reply)})
        return inventory_reply(ctx, "backup_storage", uuid)

    @apis.register("AddLocalPrimaryStorage")
    def add_local_ps(msg: AddLocalPrimaryStorageMsg, ctx: Context) -> dict:
        """Add local storage: the directory ``url`` on each host of attached clusters."""
        require(ctx, "zone", msg.zone_uuid, "zoneUuid")
        uuid = msg.resource_uuid or new_uuid()
        ctx.db.insert("primary_storage", {"uuid": uuid, "name": msg.name,
                                          "type": "LocalStorage", "zone_uuid": msg.zone_uuid,
                                          "url": msg.url, "description": msg.description,
                                          "config": {}})
        return inventory_reply(ctx, "primary_storage", uuid)

    @apis.register("AttachPrimaryStorageToCluster", long=True)
    def attach_ps(msg: PsClusterMsg, ctx: Context, deadline) -> dict:
        """Prepare every connected host of the cluster for the storage, then attach."""
        ps = require(ctx, "primary_storage", msg.primary_storage_uuid, "primaryStorageUuid")
        cluster = require(ctx, "cluster", msg.cluster_uuid, "clusterUuid")
        if cluster["zone_uuid"] != ps["zone_uuid"]:
            raise ApiError("clusterUuid: the cluster is in another zone than the storage")
        for host in ctx.db.find("host", "cluster_uuid = ? AND status = 'Connected'",
                                (cluster["uuid"],)):
            try:
                prepare_host(ctx, ps, host)
            except AgentCallError as exc:
                raise ApiError(f"host {host['name']}: {exc}") from None
        with ctx.db.tx():
            ctx.db.conn().execute("INSERT OR IGNORE INTO ps_cluster VALUES (?, ?)",
                                  (ps["uuid"], cluster["uuid"]))
        return inventory_reply(ctx, "primary_storage", ps["uuid"])

    @apis.register("DetachPrimaryStorageFromCluster")
    def detach_ps(msg: PsClusterMsg, ctx: Context) -> dict:
        """Detach: no new volumes there from that cluster (running VMs keep theirs)."""
        with ctx.db.tx():
            ctx.db.conn().execute("DELETE FROM ps_cluster WHERE ps_uuid = ? AND "
                                  "cluster_uuid = ?", (msg.primary_storage_uuid,
                                                       msg.cluster_uuid))
        return inventory_reply(ctx, "primary_storage", msg.primary_storage_uuid)

    @apis.register("AttachBackupStorageToZone")
    def attach_bs(msg: BsZoneMsg, ctx: Context) -> dict:
        """Let the zone's VMs use images of this backup storage."""
        require(ctx, "backup_storage", msg.backup_storage_uuid, "backupStorageUuid")
        require(ctx, "zone", msg.zone_uuid, "zoneUuid")
        with ctx.db.tx():
            ctx.db.conn().execute("INSERT OR IGNORE INTO bs_zone VALUES (?, ?)",
                                  (msg.backup_storage_uuid, msg.zone_uuid))
        return inventory_reply(ctx, "backup_storage", msg.backup_storage_uuid)

    def add_mons(msg: AddMonMsg, ctx: Context, table: str, prefix: str) -> dict:
        st = require(ctx, table, msg.uuid, "uuid")
        config = dict(st["config"])
        for i, url in enumerate(msg.mon_urls):
            mon = parse_mon_url(url)
            probe = {"name": st["name"], "config": {**config, "monHosts": [mon.host]}}
            reply = ceph_call(ctx, probe, f"{prefix}/ping", {"fsid": st["fsid"]})
            if mon.host not in config["monHosts"]:
                config["monHosts"] = [*config["monHosts"], mon.host]
                config["monUrls"] = [*config["monUrls"], _without_password(url)]
            if "mons" in config:
                config["mons"] = _mons_of(reply)
            log.info("%s: mon %s added (monUrls.%d)", st["name"], mon.host, i)
        ctx.db.update(table, st["uuid"], config=config)
        return inventory_reply(ctx, table, st["uuid"])

    def remove_mons(msg: RemoveMonMsg, ctx: Context, table: str) -> dict:
        st = require(ctx, table, msg.uuid, "uuid")
        config = dict(st["config"])
        keep = [i for i, h in enumerate(config["monHosts"]) if h not in msg.mon_hostnames]
        if not keep:
            raise ApiError(f"monHostnames: {st['name']} would have no mon left")
        config["monHosts"] = [config["monHosts"][i] for i in keep]
        config["monUrls"] = [config["monUrls"][i] for i in keep]
        ctx.db.update(table, st["uuid"], config=config)
        return inventory_reply(ctx, table, st["uuid"])

    @apis.register("AddMonToCephPrimaryStorage")
    def add_mon_ps(msg: AddMonMsg, ctx: Context) -> dict:
        """Add mons (their cephagent must answer for the same cluster, by fsid)."""
        return add_mons(msg, ctx, "primary_storage", PS)

    @apis.register("AddMonToCephBackupStorage")
    def add_mon_bs(msg: AddMonMsg, ctx: Context) -> dict:
        """Add mons (their cephagent must answer for the same cluster, by fsid)."""
        return add_mons(msg, ctx, "backup_storage", BS)

    @apis.register("RemoveMonFromCephPrimaryStorage")
    def remove_mon_ps(msg: RemoveMonMsg, ctx: Context) -> dict:
        """Stop using these mons (at least one stays)."""
        return remove_mons(msg, ctx, "primary_storage")

    @apis.register("RemoveMonFromCephBackupStorage")
    def remove_mon_bs(msg: RemoveMonMsg, ctx: Context) -> dict:
        """Stop using these mons (at least one stays)."""
        return remove_mons(msg, ctx, "backup_storage")

    @apis.register("DeletePrimaryStorage")
    def delete_ps(msg: UuidMsg, ctx: Context) -> dict:
        """Delete a primary storage no volume is on."""
        require(ctx, "primary_storage", msg.uuid, "uuid")
        if ctx.db.find("volume", "ps_uuid = ? AND status != 'Deleted'", (msg.uuid,)):
            raise ApiError(f"uuid: primary storage {msg.uuid} still holds volumes")
        ctx.db.delete("primary_storage", msg.uuid)
        return {}

    @apis.register("DeleteBackupStorage")
    def delete_bs(msg: UuidMsg, ctx: Context) -> dict:
        """Delete a backup storage from the inventory (its images lose this copy)."""
        require(ctx, "backup_storage", msg.uuid, "uuid")
        ctx.db.delete("backup_storage", msg.uuid)
        return {}


def _without_password(url: str) -> str:
    m = parse_mon_url(url)
    return f"{m.ssh_user}@{m.host}:{m.ssh_port}/?monPort={m.mon_port}"
