"""SFTP backup storage: images as files under the storage's directory on its host,
driven through the sftpbsagent there; KVM hosts pull them over ssh."""

from __future__ import annotations

from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services.backends.backup import BackupStorage
from coordinator.services.storageagents import SFTP_BS, sftp_call


class SftpBackup(BackupStorage):
    type = "SftpBackupStorage"
    download_path = f"{SFTP_BS}/download"
    delete_path = f"{SFTP_BS}/delete"

    def call(self, ctx: Context, path: str, body: dict,
             deadline: Deadline | None = None) -> dict:
        return sftp_call(ctx, self.row, path, body, deadline)

    def image_path(self, image_uuid: str) -> str:
        return f"{self.row['url'].rstrip('/')}/images/{image_uuid}.template"
