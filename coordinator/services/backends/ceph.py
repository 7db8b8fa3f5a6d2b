"""Ceph as primary and backup storage (ZStack 0.9), driven through the cephagent of the
first mon that answers. The image is copied inside the cluster from the backup
storage's pool to the cache pool, snapshotted and protected; root volumes are
copy-on-write clones of it. A Ceph backup storage serves only the primary storages of
the same fsid. Volumes are usable from every host: live migration and HA work here."""

from __future__ import annotations

from cephagent.models.backup import DownloadImageReply
from coordinator.clients.cephagent import (
    CREATE_SNAPSHOT,
    DELETE_IMAGE,
    DELETE_SNAPSHOT,
    DELETE_VOLUME,
    ROLLBACK_SNAPSHOT,
    CephAgent,
)
from coordinator.clients.endpoint import Call
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services.backends.backup import BackupStorage
from coordinator.services.backends.primary import PrimaryStorage, image_copies
from coordinator.services.hosts import kvm
from coordinator.services.storageagents import ceph_agent

CACHE_SNAPSHOT = "cache"
SNAPSHOT_OPS = {"create": CREATE_SNAPSHOT, "delete": DELETE_SNAPSHOT,
                "rollback": ROLLBACK_SNAPSHOT}


class CephPrimary(PrimaryStorage):
    type = "Ceph"
    shared = True
    snapshots = True

    def agent(self, ctx: Context) -> CephAgent:
        return ceph_agent(ctx, self.row)

    def prepare_host(self, ctx: Context, host: dict) -> None:
        config = self.row["config"]
        kvm(ctx, host).create_ceph_secret(
            uuid=config["secretUuid"], user_key=config["userKey"], user_name="admin")

    def image_sources(self, ctx: Context, image: dict) -> list[dict]:
        return image_copies(ctx, image, "b.type = 'Ceph' AND b.fsid = ?", (self.row["fsid"],))

    def cache_image(self, ctx: Context, host: dict, image: dict, bs: dict,
                    deadline: Deadline) -> str:
        dst = f"ceph://{self.row['config']['imageCachePoolName']}/{image['uuid']}"
        snapshot = f"{dst}@{CACHE_SNAPSHOT}"
        agent = self.agent(ctx)
        agent.copy_volume(src_path=bs["image_path"], dst_path=dst, wait=deadline.left())
        agent.commit_snapshot(snapshot_path=snapshot)
        return snapshot

    def root_volume_path(self, volume_uuid: str) -> str:
        return f"ceph://{self.row['config']['rootVolumePoolName']}/{volume_uuid}"

    def create_root_volume(self, ctx: Context, host: dict, cache: str, image: dict,
                           path: str, size: int) -> None:
        """An RBD clone, grown to ``size`` if larger than the image."""
        agent = self.agent(ctx)
        agent.clone_volume(src_path=cache, dst_path=path)
        if size > image["size"]:
            agent.resize_volume(install_path=path, size=size)

    def root_volume_fields(self, host: dict) -> dict:
        return {"format": "raw", "host_uuid": ""}

    def create_data_volume(self, ctx: Context, volume: dict) -> str:
        """An empty RBD image in the data pool."""
        path = f"ceph://{self.row['config']['dataVolumePoolName']}/{volume['uuid']}"
        self.agent(ctx).create_empty_volume(install_path=path, size=volume["size"])
        return path

    def delete_command(self, install_path: str) -> tuple[Call, bool]:
        return DELETE_VOLUME.call(install_path=install_path), False

    def volume_to(self, volume: dict) -> dict:
        return {"volumeUuid": volume["uuid"], "deviceId": volume["device_id"] or 0,
                "installPath": volume["install_path"], "deviceType": "ceph", "format": "raw",
                "secretUuid": self.row["config"]["secretUuid"],
                "monInfo": [{"hostname": m["host"], "port": m["port"]}
                            for m in self.row["config"]["mons"]]}

    def ha_access(self) -> dict:
        """The root-volume pool, where the self-fencers write their heartbeats."""
        config = self.row["config"]
        return {"pool": config["rootVolumePoolName"], "user_key": config["userKey"],
                "mon_hosts": [f"{m['host']}:{m['port']}" for m in config["mons"]]}

    def snapshot_command(self, op: str, snapshot_path: str) -> Call:
        """An RBD snapshot ``ceph://pool/volume@<snapshot uuid>``."""
        return SNAPSHOT_OPS[op].call(snapshot_path=snapshot_path)

    def snapshot(self, ctx: Context, op: str, snapshot_path: str) -> int:
        return self.agent(ctx).send(SNAPSHOT_OPS[op], {"snapshot_path": snapshot_path}).size


class CephBackup(BackupStorage):
    type = "Ceph"

    def agent(self, ctx: Context) -> CephAgent:
        return ceph_agent(ctx, self.row)

    def image_path(self, image_uuid: str) -> str:
        return f"ceph://{self.row['config']['poolName']}/{image_uuid}"

    def download(self, ctx: Context, image_uuid: str, url: str,
                 deadline: Deadline) -> tuple[str, DownloadImageReply]:
        path = self.image_path(image_uuid)
        return path, self.agent(ctx).download_image(url=url, image_uuid=image_uuid,
                                                    install_path=path, wait=deadline.left())

    def delete_command(self, install_path: str) -> Call:
        return DELETE_IMAGE.call(install_path=install_path)
