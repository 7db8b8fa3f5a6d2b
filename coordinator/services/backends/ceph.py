"""Ceph as primary and backup storage (seed 0.9), driven through the cephagent of the
first mon that answers. The image is copied inside the cluster from the backup
storage's pool to the cache pool, snapshotted and protected; root volumes are
copy-on-write clones of it. A Ceph backup storage serves only the primary storages of
the same fsid. Volumes are usable from every host: live migration and HA work here."""

from __future__ import annotations

from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services.backends.backup import BackupStorage
from coordinator.services.backends.primary import PrimaryStorage, image_copies
from coordinator.services.hosts import agent_url
from coordinator.services.storageagents import CEPH_BS, CEPH_PS, ceph_call

CACHE_SNAPSHOT = "cache"


class CephPrimary(PrimaryStorage):
    type = "Ceph"
    shared = True
    snapshots = True

    def call(self, ctx: Context, path: str, body: dict,
             deadline: Deadline | None = None) -> dict:
        return ceph_call(ctx, self.row, path, body, deadline)

    def prepare_host(self, ctx: Context, host: dict) -> None:
        config = self.row["config"]
        ctx.agents.call(agent_url(host), "/vm/createcephsecret", {
            "uuid": config["secretUuid"], "userKey": config["userKey"], "userName": "admin"})

    def image_sources(self, ctx: Context, image: dict) -> list[dict]:
        return image_copies(ctx, image, "b.type = 'Ceph' AND b.fsid = ?", (self.row["fsid"],))

    def cache_image(self, ctx: Context, host: dict, image: dict, bs: dict,
                    deadline: Deadline) -> str:
        dst = f"ceph://{self.row['config']['imageCachePoolName']}/{image['uuid']}"
        snapshot = f"{dst}@{CACHE_SNAPSHOT}"
        self.call(ctx, f"{CEPH_PS}/volume/cp", {"srcPath": bs["image_path"], "dstPath": dst},
                  deadline)
        self.call(ctx, f"{CEPH_PS}/snapshot/commit", {"snapshotPath": snapshot})
        return snapshot

    def root_volume_path(self, volume_uuid: str) -> str:
        return f"ceph://{self.row['config']['rootVolumePoolName']}/{volume_uuid}"

    def create_root_volume(self, ctx: Context, host: dict, cache: str, image: dict,
                           path: str, size: int) -> None:
        """An RBD clone, grown to ``size`` if larger than the image."""
        self.call(ctx, f"{CEPH_PS}/volume/clone", {"srcPath": cache, "dstPath": path})
        if size > image["size"]:
            self.call(ctx, f"{CEPH_PS}/volume/resize", {"installPath": path, "size": size})

    def root_volume_fields(self, host: dict) -> dict:
        return {"format": "raw", "host_uuid": ""}

    def create_data_volume(self, ctx: Context, volume: dict) -> str:
        """An empty RBD image in the data pool."""
        path = f"ceph://{self.row['config']['dataVolumePoolName']}/{volume['uuid']}"
        self.call(ctx, f"{CEPH_PS}/volume/createempty",
                  {"installPath": path, "size": volume["size"]})
        return path

    def delete_command(self, install_path: str) -> tuple[str, dict, bool]:
        return f"{CEPH_PS}/delete", {"installPath": install_path}, False

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

    def snapshot_command(self, op: str, snapshot_path: str) -> tuple[str, dict]:
        """An RBD snapshot ``ceph://pool/volume@<snapshot uuid>``."""
        return f"{CEPH_PS}/snapshot/{op}", {"snapshotPath": snapshot_path}


class CephBackup(BackupStorage):
    type = "Ceph"
    download_path = f"{CEPH_BS}/image/download"
    delete_path = f"{CEPH_BS}/image/delete"

    def call(self, ctx: Context, path: str, body: dict,
             deadline: Deadline | None = None) -> dict:
        return ceph_call(ctx, self.row, path, body, deadline)

    def image_path(self, image_uuid: str) -> str:
        return f"ceph://{self.row['config']['poolName']}/{image_uuid}"

