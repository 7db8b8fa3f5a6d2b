"""Local primary storage: each host keeps its own image cache, pulled over ssh from an
SFTP backup storage of the zone (the host's kvmagent key is authorized there first);
root volumes are qcow2 files backed by it, so the VM stays on that host (until
LocalStorageMigrateVolume moves it)."""

from __future__ import annotations

from coordinator.clients.endpoint import Call
from coordinator.clients.kvmagent import DELETE_BITS
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services.backends.primary import PrimaryStorage, image_copies
from coordinator.services.hosts import kvm
from coordinator.services.storageagents import sftp_agent


class LocalStorage(PrimaryStorage):
    type = "LocalStorage"
    per_host = True

    def prepare_host(self, ctx: Context, host: dict) -> None:
        kvm(ctx, host).init_local_storage(path=self.row["url"])

    def image_sources(self, ctx: Context, image: dict) -> list[dict]:
        return image_copies(ctx, image, "b.type = 'SftpBackupStorage' AND b.uuid IN (SELECT "
                            "bs_uuid FROM bs_zone WHERE zone_uuid = ?)",
                            (self.row["zone_uuid"],))

    def cache_host(self, host: dict) -> str:
        return host["uuid"]

    def cache_image(self, ctx: Context, host: dict, image: dict, bs: dict,
                    deadline: Deadline) -> str:
        agent = kvm(ctx, host)
        sftp_agent(ctx, bs).authorize_key(public_key=agent.ssh_key().public_key)
        suffix = "iso" if image["media_type"] == "ISO" else "qcow2"
        path = f"{self.row['url'].rstrip('/')}/imagecache/{image['uuid']}.{suffix}"
        agent.sftp_download(
            hostname=bs["hostname"], username=bs["config"]["username"],
            ssh_port=bs["config"]["sshPort"], backup_storage_install_path=bs["image_path"],
            primary_storage_install_path=path, image_uuid=image["uuid"],
            md5_sum=image["md5"] or None, actual_size=image["actual_size"] or None,
            wait=deadline.left())
        return path

    def root_volume_path(self, volume_uuid: str) -> str:
        return f"{self.row['url'].rstrip('/')}/rootvolumes/{volume_uuid}.qcow2"

    def create_root_volume(self, ctx: Context, host: dict, cache: str, image: dict,
                           path: str, size: int) -> None:
        """A qcow2 file backed by the host's cache."""
        kvm(ctx, host).create_volume_from_cache(
            template_path_in_cache=cache, install_url=path)

    def root_volume_fields(self, host: dict) -> dict:
        return {"format": "qcow2", "host_uuid": host["uuid"]}

    def delete_command(self, install_path: str) -> tuple[Call, bool]:
        return DELETE_BITS.call(path=install_path), True

    def copy_to_host(self, ctx: Context, volume: dict, source: dict, dest: dict,
                     vm_uuid: str | None, deadline: Deadline) -> None:
        """The source host's kvmagent copies the volume with its backing chain (the image
        cache) over ssh, once its key is authorized on the destination."""
        agent = kvm(ctx, source)
        kvm(ctx, dest).authorize_key(public_key=agent.ssh_key().public_key)
        self.prepare_host(ctx, dest)
        agent.migrate_volume(src_install_path=volume["install_path"],
                             dst_host_ip=dest["management_ip"],
                             volume_type=volume["type"].lower(), vm_uuid=vm_uuid,
                             wait=deadline.left())

    def volume_to(self, volume: dict) -> dict:
        return {"volumeUuid": volume["uuid"], "deviceId": volume["device_id"] or 0,
                "installPath": volume["install_path"], "deviceType": "file",
                "format": "qcow2"}
