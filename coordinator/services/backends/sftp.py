"""SFTP backup storage: images as files under the storage's directory on its host,
driven through the sftpbsagent there; KVM hosts pull them over ssh."""

from __future__ import annotations

from coordinator.clients.endpoint import Call
from coordinator.clients.sftpbsagent import DELETE, SftpBsAgent
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services.backends.backup import BackupStorage
from coordinator.services.storageagents import sftp_agent
from sftpbsagent.models.storage import ImageReply


class SftpBackup(BackupStorage):
    type = "SftpBackupStorage"

    def agent(self, ctx: Context) -> SftpBsAgent:
        return sftp_agent(ctx, self.row)

    def image_path(self, image_uuid: str) -> str:
        return f"{self.row['url'].rstrip('/')}/images/{image_uuid}.template"

    def download(self, ctx: Context, image_uuid: str, url: str,
                 deadline: Deadline) -> tuple[str, ImageReply]:
        path = self.image_path(image_uuid)
        return path, self.agent(ctx).download(url=url, image_uuid=image_uuid,
                                              install_path=path, wait=deadline.left())

    def delete_command(self, install_path: str) -> Call:
        return DELETE.call(install_url=install_path)
