"""Local primary storage: each host keeps its own image cache, pulled over ssh from an
SFTP backup storage of the zone (the host's kvmagent key is authorized there first);
root volumes are qcow2 files backed by it, so the VM stays on that host (until
LocalStorageMigrateVolume moves it)."""

from __future__ import annotations

from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services.backends.primary import PrimaryStorage, image_copies
from coordinator.services.hosts import agent_url
from coordinator.services.storageagents import SFTP_BS, sftp_call


class LocalStorage(PrimaryStorage):
    type = "LocalStorage"
    per_host = True

    def prepare_host(self, ctx: Context, host: dict) -> None:
        ctx.agents.call(agent_url(host), "/localstorage/init", {"path": self.row["url"]})

    def image_sources(self, ctx: Context, image: dict) -> list[dict]:
        return image_copies(ctx, image, "b.type = 'SftpBackupStorage' AND b.uuid IN (SELECT "
                            "bs_uuid FROM bs_zone WHERE zone_uuid = ?)",
                            (self.row["zone_uuid"],))

    def cache_host(self, host: dict) -> str:
        return host["uuid"]

    def cache_image(self, ctx: Context, host: dict, image: dict, bs: dict,
                    deadline: Deadline) -> str:
        key = ctx.agents.call(agent_url(host), "/localstorage/sshkey", {})["publicKey"]
        sftp_call(ctx, bs, f"{SFTP_BS}/authorizekey", {"publicKey": key})
        suffix = "iso" if image["media_type"] == "ISO" else "qcow2"
        path = f"{self.row['url'].rstrip('/')}/imagecache/{image['uuid']}.{suffix}"
        ctx.agents.call_async(agent_url(host), "/localstorage/sftp/download", {
            "hostname": bs["hostname"], "username": bs["config"]["username"],
            "sshPort": bs["config"]["sshPort"], "backupStorageInstallPath": bs["image_path"],
            "primaryStorageInstallPath": path, "imageUuid": image["uuid"],
            "md5Sum": image["md5"] or None, "actualSize": image["actual_size"] or None},
            deadline.left())
        return path

    def root_volume_path(self, volume_uuid: str) -> str:
        return f"{self.row['url'].rstrip('/')}/rootvolumes/{volume_uuid}.qcow2"

    def create_root_volume(self, ctx: Context, host: dict, cache: str, image: dict,
                           path: str, size: int) -> None:
        """A qcow2 file backed by the host's cache."""
        ctx.agents.call(agent_url(host), "/localstorage/volume/createvolumefromcache",
                        {"templatePathInCache": cache, "installUrl": path})

    def root_volume_fields(self, host: dict) -> dict:
        return {"format": "qcow2", "host_uuid": host["uuid"]}

    def delete_command(self, install_path: str) -> tuple[str, dict, bool]:
        return "/localstorage/delete", {"path": install_path}, True

    def copy_to_host(self, ctx: Context, volume: dict, source: dict, dest: dict,
                     vm_uuid: str | None, deadline: Deadline) -> None:
        """The source host's kvmagent copies the volume with its backing chain (the image
        cache) over ssh, once its key is authorized on the destination."""
        key = ctx.agents.call(agent_url(source), "/localstorage/sshkey", {})["publicKey"]
        ctx.agents.call(agent_url(dest), "/localstorage/authorizekey", {"publicKey": key})
        self.prepare_host(ctx, dest)
        body = {"srcInstallPath": volume["install_path"], "dstHostIp": dest["management_ip"],
                "volumeType": volume["type"].lower()}
        if vm_uuid is not None:
            body["vmUuid"] = vm_uuid
        ctx.agents.call_async(agent_url(source), "/localstorage/volume/migrate", body,
                              deadline.left())

    def volume_to(self, volume: dict) -> dict:
        return {"volumeUuid": volume["uuid"], "deviceId": volume["device_id"] or 0,
                "installPath": volume["install_path"], "deviceType": "file",
                "format": "qcow2"}
