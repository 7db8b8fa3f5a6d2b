"""What VM flows need of primary storage: the host prepared for it, the image in its
cache (made once however many VMs ask at once), a root volume from that cache, a
volume's VolumeTO, and deleting a volume.

- Ceph (seed 0.9): the image is copied inside the cluster from the backup storage's pool
  to the cache pool, snapshotted and protected; root volumes are copy-on-write clones.
  A Ceph backup storage serves only the primary storages of the same fsid.
- Local storage: each host keeps its own cache, pulled over ssh from an SFTP backup
  storage of the zone (the host's kvmagent key is authorized there first); root volumes
  are qcow2 files backed by it, so the VM stays on that host.
"""

from __future__ import annotations

import logging

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.jobs import Deadline
from coordinator.services.hosts import agent_url
from coordinator.services.storageagents import CEPH_PS, SFTP_BS, ceph_call, sftp_call

log = logging.getLogger(__name__)
CACHE_SNAPSHOT = "cache"


def prepare_host(ctx: Context, ps: dict, host: dict) -> None:
    """What a host needs before it runs a VM with volumes on ``ps``."""
    if ps["type"] == "Ceph":
        ctx.agents.call(agent_url(host), "/vm/createcephsecret", {
            "uuid": ps["config"]["secretUuid"], "userKey": ps["config"]["userKey"],
            "userName": "admin"})
    elif ps["type"] == "LocalStorage":
        ctx.agents.call(agent_url(host), "/localstorage/init", {"path": ps["url"]})


def can_hold(ctx: Context, ps: dict, image: dict) -> bool:
    """Can ``ps`` take a root volume of ``image``?"""
    return bool(_sources(ctx, ps, image))


def _sources(ctx: Context, ps: dict, image: dict) -> list[dict]:
    """The backup storages ``ps`` can take ``image`` from, with its path there."""
    if ps["type"] == "Ceph":
        where, params = "b.type = 'Ceph' AND b.fsid = ?", (ps["fsid"],)
    elif ps["type"] == "LocalStorage":
        where, params = ("b.type = 'SftpBackupStorage' AND b.uuid IN (SELECT bs_uuid FROM "
                         "bs_zone WHERE zone_uuid = ?)", (ps["zone_uuid"],))
    else:
        return []
    rows = ctx.db.conn().execute(
        "SELECT b.uuid, r.install_path FROM image_bs r JOIN backup_storage b ON "
        f"b.uuid = r.bs_uuid WHERE r.image_uuid = ? AND r.status = 'Ready' AND {where}",
        (image["uuid"], *params)).fetchall()
    return [{**ctx.db.get("backup_storage", uuid), "image_path": path} for uuid, path in rows]


def image_cache(ctx: Context, ps: dict, host: dict, image: dict, deadline: Deadline) -> str:
    """The image in ``ps``'s cache (per host for local storage)."""
    host_key = host["uuid"] if ps["type"] == "LocalStorage" else ""
    with ctx.locks.hold(f"imagecache:{ps['uuid']}:{host_key}:{image['uuid']}"):
        cached = ctx.db.find("image_cache", "ps_uuid = ? AND host_uuid = ? AND image_uuid = ? "
                             "AND status = 'Ready'", (ps["uuid"], host_key, image["uuid"]))
        if cached:
            return cached[0]["install_path"]
        sources = _sources(ctx, ps, image)
        if not sources:
            raise ApiError(f"image {image['name']} is on no backup storage primary storage "
                           f"{ps['name']} can take it from (Ceph: a Ceph backup storage of "
                           "the same fsid; local: an SFTP backup storage of the zone)")
        deadline.check("image cache")
        if ps["type"] == "Ceph":
            path = _ceph_cache(ctx, ps, image, sources[0], deadline)
        else:
            path = _local_cache(ctx, ps, host, image, sources[0], deadline)
        with ctx.db.tx():
            ctx.db.conn().execute("DELETE FROM image_cache WHERE ps_uuid = ? AND host_uuid = ? "
                                  "AND image_uuid = ?", (ps["uuid"], host_key, image["uuid"]))
            ctx.db.insert("image_cache", {"uuid": new_uuid(), "ps_uuid": ps["uuid"],
                                          "host_uuid": host_key, "image_uuid": image["uuid"],
                                          "install_path": path, "status": "Ready",
                                          "size": image["size"]})
        log.info("image %s cached in primary storage %s%s at %s", image["name"], ps["name"],
                 f" on host {host['name']}" if host_key else "", path)
        return path


def _ceph_cache(ctx: Context, ps: dict, image: dict, bs: dict, deadline: Deadline) -> str:
    dst = f"ceph://{ps['config']['imageCachePoolName']}/{image['uuid']}"
    snapshot = f"{dst}@{CACHE_SNAPSHOT}"
    ceph_call(ctx, ps, f"{CEPH_PS}/volume/cp", {"srcPath": bs["image_path"], "dstPath": dst},
              deadline)
    ceph_call(ctx, ps, f"{CEPH_PS}/snapshot/commit", {"snapshotPath": snapshot})
    return snapshot


def _local_cache(ctx: Context, ps: dict, host: dict, image: dict, bs: dict,
                 deadline: Deadline) -> str:
    key = ctx.agents.call(agent_url(host), "/localstorage/sshkey", {})["publicKey"]
    sftp_call(ctx, bs, f"{SFTP_BS}/authorizekey", {"publicKey": key})
    suffix = "iso" if image["media_type"] == "ISO" else "qcow2"
    path = f"{ps['url'].rstrip('/')}/imagecache/{image['uuid']}.{suffix}"
    ctx.agents.call_async(agent_url(host), "/localstorage/sftp/download", {
        "hostname": bs["hostname"], "username": bs["config"]["username"],
        "sshPort": bs["config"]["sshPort"], "backupStorageInstallPath": bs["image_path"],
        "primaryStorageInstallPath": path, "imageUuid": image["uuid"],
        "md5Sum": image["md5"] or None, "actualSize": image["actual_size"] or None},
        deadline.left())
    return path


def create_root_volume(ctx: Context, ps: dict, host: dict, image: dict, volume_uuid: str,
                       size: int, deadline: Deadline) -> str:
    """A copy-on-write volume on the cached image: an RBD clone (grown to ``size`` if
    larger) or a qcow2 file backed by the host's cache."""
    cache = image_cache(ctx, ps, host, image, deadline)
    path = root_volume_path(ps, volume_uuid)
    if ps["type"] == "Ceph":
        ceph_call(ctx, ps, f"{CEPH_PS}/volume/clone", {"srcPath": cache, "dstPath": path})
        if size > image["size"]:
            ceph_call(ctx, ps, f"{CEPH_PS}/volume/resize", {"installPath": path, "size": size})
        return path
    ctx.agents.call(agent_url(host), "/localstorage/volume/createvolumefromcache",
                    {"templatePathInCache": cache, "installUrl": path})
    return path


def root_volume_path(ps: dict, volume_uuid: str) -> str:
    """Where :func:`create_root_volume` puts a volume (for an undo that never saw it)."""
    if ps["type"] == "Ceph":
        return f"ceph://{ps['config']['rootVolumePoolName']}/{volume_uuid}"
    return f"{ps['url'].rstrip('/')}/rootvolumes/{volume_uuid}.qcow2"


def delete_volume(ctx: Context, ps: dict, install_path: str, host: dict | None) -> None:
    if ps["type"] == "Ceph":
        ceph_call(ctx, ps, f"{CEPH_PS}/delete", {"installPath": install_path})
    elif host is not None:
        ctx.agents.call(agent_url(host), "/localstorage/delete", {"path": install_path})


def volume_to(ps: dict, volume: dict) -> dict:
    """The VolumeTO of ``volume`` for kvmagent's /vm/start."""
    to = {"volumeUuid": volume["uuid"], "deviceId": volume["device_id"] or 0,
          "installPath": volume["install_path"]}
    if ps["type"] == "Ceph":
        to.update(deviceType="ceph", format="raw", secretUuid=ps["config"]["secretUuid"],
                  monInfo=[{"hostname": m["host"], "port": m["port"]}
                           for m in ps["config"]["mons"]])
    else:
        to.update(deviceType="file", format="qcow2")
    return to
