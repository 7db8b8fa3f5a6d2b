"""Primary and backup storages: Ceph (ZStack 0.9: one cluster as both, copy-on-write
everywhere), local primary storage and SFTP backup storage; attaching them.

A Ceph storage is driven through the cephagent on one of its mons (``monUrls``,
ZStack 0.9's ``sshUser:sshPassword@monIp[:sshPort][/?monPort=N]``), an SFTP backup
storage through the sftpbsagent on its host; passwords are for deployment only and
never stored. What VM flows need of them is in :mod:`coordinator.services.rootvolumes`.
"""

from __future__ import annotations

import logging

from cephagent.models.common import CephReply, ConnectReply
from cephagent.models.primary import PrimaryInitReply
from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.monurl import parse_mon_url
from coordinator.repos.storage import BsZones, PsClusters
from coordinator.services.lookup import require
from coordinator.services.rootvolumes import prepare_host
from coordinator.services.storageagents import ceph_agent, sftp_agent
from sftpbsagent.models.storage import CapacityReply

log = logging.getLogger(__name__)
CEPHAGENT_PORT = 7762
SFTPBSAGENT_PORT = 7171


def _capacity(reply: CephReply | CapacityReply) -> dict:
    return {k: getattr(reply, k) for k in ("total_capacity", "available_capacity")
            if getattr(reply, k) is not None}


def _mons_of(reply: ConnectReply | PrimaryInitReply) -> list[dict]:
    out = []
    for m in reply.mons:
        host, _, port = m.addr.rpartition(":")
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


def mon_config(mon_urls: list[str], port: int) -> dict:
    return {"monHosts": [parse_mon_url(u).host for u in mon_urls], "agentPort": port,
            "monUrls": [_without_password(u) for u in mon_urls]}


def add_ceph_ps(ctx: Context, uuid: str, zone_uuid: str, name: str, description: str,
                mon_urls: list[str], agent_port: int, pools: dict) -> None:
    """A Ceph cluster as primary storage: ``pools`` (rootVolumePoolName... or None)
    checked or created by the agent."""
    require(ctx, "zone", zone_uuid, "zoneUuid")
    draft = {"name": name, "config": mon_config(mon_urls, agent_port)}
    reply = ceph_agent(ctx, draft).init_primary(
        uuid=uuid, **{k: v for k, v in pools.items() if v})
    config = {**draft["config"], "secretUuid": uuid, "userKey": reply.user_key,
              "mons": _mons_of(reply), "rootVolumePoolName": reply.root_volume_pool_name,
              "dataVolumePoolName": reply.data_volume_pool_name,
              "imageCachePoolName": reply.image_cache_pool_name}
    ctx.db.insert("primary_storage", {"uuid": uuid, "name": name, "type": "Ceph",
                                      "zone_uuid": zone_uuid, "url": "ceph",
                                      "description": description, "fsid": reply.fsid,
                                      "config": config, **_capacity(reply)})


def add_ceph_bs(ctx: Context, uuid: str, name: str, description: str, mon_urls: list[str],
                agent_port: int, pool_name: str | None) -> None:
    """A Ceph cluster as backup storage (images in one pool)."""
    draft = {"name": name, "config": mon_config(mon_urls, agent_port)}
    reply = ceph_agent(ctx, draft).init_backup(uuid=uuid, pool_name=pool_name or None)
    config = {**draft["config"], "poolName": reply.pool_name}
    ctx.db.insert("backup_storage", {"uuid": uuid, "name": name, "type": "Ceph",
                                     "url": "ceph", "description": description,
                                     "hostname": draft["config"]["monHosts"][0],
                                     "agent_port": agent_port, "fsid": reply.fsid,
                                     "config": config, **_capacity(reply)})


def add_sftp_bs(ctx: Context, row: dict) -> None:
    """An SFTP backup storage (``row``, type and config included), connected first."""
    reply = sftp_agent(ctx, row).connect(storage_path=row["url"], uuid=row["uuid"],
                                         send_command_url=ctx.report_url)
    ctx.db.insert("backup_storage", {**row, **_capacity(reply)})


def add_local_ps(ctx: Context, uuid: str, zone_uuid: str, name: str, description: str,
                 url: str) -> None:
    """Local storage: the directory ``url`` on each host of attached clusters."""
    require(ctx, "zone", zone_uuid, "zoneUuid")
    ctx.db.insert("primary_storage", {"uuid": uuid, "name": name, "type": "LocalStorage",
                                      "zone_uuid": zone_uuid, "url": url,
                                      "description": description, "config": {}})


def attach_ps(ctx: Context, ps_uuid: str, cluster_uuid: str) -> None:
    """Prepare every connected host of the cluster for the storage, then attach."""
    ps = require(ctx, "primary_storage", ps_uuid, "primaryStorageUuid")
    cluster = require(ctx, "cluster", cluster_uuid, "clusterUuid")
    if cluster["zone_uuid"] != ps["zone_uuid"]:
        raise ApiError("clusterUuid: the cluster is in another zone than the storage")
    for host in ctx.db.find("host", "cluster_uuid = ? AND status = 'Connected'",
                            (cluster["uuid"],)):
        try:
            prepare_host(ctx, ps, host)
        except AgentCallError as exc:
            raise ApiError(f"host {host['name']}: {exc}") from None
    PsClusters(ctx.db).attach(ps["uuid"], cluster["uuid"])


def detach_ps(ctx: Context, ps_uuid: str, cluster_uuid: str) -> None:
    PsClusters(ctx.db).detach(ps_uuid, cluster_uuid)


def attach_bs(ctx: Context, bs_uuid: str, zone_uuid: str) -> None:
    require(ctx, "backup_storage", bs_uuid, "backupStorageUuid")
    require(ctx, "zone", zone_uuid, "zoneUuid")
    BsZones(ctx.db).attach(bs_uuid, zone_uuid)


def add_mons(ctx: Context, table: str, uuid: str, mon_urls: list[str]) -> None:
    """More mons for a Ceph storage (``table``); each one's cephagent must answer for
    the same cluster (by fsid)."""
    st = require(ctx, table, uuid, "uuid")
    config = dict(st["config"])
    for i, url in enumerate(mon_urls):
        mon = parse_mon_url(url)
        probe = {"name": st["name"], "config": {**config, "monHosts": [mon.host]}}
        agent = ceph_agent(ctx, probe)
        ping = agent.ping_primary if table == "primary_storage" else agent.ping_backup
        reply = ping(fsid=st["fsid"])
        if mon.host not in config["monHosts"]:
            config["monHosts"] = [*config["monHosts"], mon.host]
            config["monUrls"] = [*config["monUrls"], _without_password(url)]
        if "mons" in config:
            config["mons"] = _mons_of(reply)
        log.info("%s: mon %s added (monUrls.%d)", st["name"], mon.host, i)
    ctx.db.update(table, st["uuid"], config=config)


def remove_mons(ctx: Context, table: str, uuid: str, mon_hostnames: list[str]) -> None:
    """Stop using these mons (at least one stays)."""
    st = require(ctx, table, uuid, "uuid")
    config = dict(st["config"])
    keep = [i for i, h in enumerate(config["monHosts"]) if h not in mon_hostnames]
    if not keep:
        raise ApiError(f"monHostnames: {st['name']} would have no mon left")
    config["monHosts"] = [config["monHosts"][i] for i in keep]
    config["monUrls"] = [config["monUrls"][i] for i in keep]
    ctx.db.update(table, st["uuid"], config=config)


def delete_ps(ctx: Context, uuid: str) -> None:
    """Delete a primary storage no volume is on."""
    require(ctx, "primary_storage", uuid, "uuid")
    if ctx.db.find("volume", "ps_uuid = ? AND status != 'Deleted'", (uuid,)):
        raise ApiError(f"uuid: primary storage {uuid} still holds volumes")
    ctx.db.delete("primary_storage", uuid)


def delete_bs(ctx: Context, uuid: str) -> None:
    """Delete a backup storage from the inventory (its images lose this copy)."""
    require(ctx, "backup_storage", uuid, "uuid")
    ctx.db.delete("backup_storage", uuid)


def _without_password(url: str) -> str:
    m = parse_mon_url(url)
    return f"{m.ssh_user}@{m.host}:{m.ssh_port}/?monPort={m.mon_port}"
