"""cephagent, on each mon of a Ceph cluster: every endpoint the coordinator calls, under
the primary storage prefix and the backup storage prefix (``init`` and ``ping`` are
under both). A storage is reached through the first of its mons' agents that answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cephagent.models import backup, common, primary
from coordinator.agentclient import AgentCallError, AgentClient
from coordinator.clients.endpoint import Endpoint
from coordinator.clients.transport import Client, FirstAnswering

PRIMARY = "/ceph/primarystorage"
BACKUP = "/ceph/backupstorage"

# primary storage
INIT_PRIMARY = Endpoint(f"{PRIMARY}/init", primary.PrimaryInitCmd, primary.PrimaryInitReply)
PING_PRIMARY = Endpoint(f"{PRIMARY}/ping", common.PingCmd, common.ConnectReply)
CREATE_EMPTY_VOLUME = Endpoint(f"{PRIMARY}/volume/createempty", primary.CreateEmptyVolumeCmd,
                               common.CephReply)
COPY_VOLUME = Endpoint(f"{PRIMARY}/volume/cp", primary.CopyVolumeCmd, common.CephReply,
                       is_async=True)
CLONE_VOLUME = Endpoint(f"{PRIMARY}/volume/clone", primary.CloneVolumeCmd, common.CephReply)
RESIZE_VOLUME = Endpoint(f"{PRIMARY}/volume/resize", primary.ResizeVolumeCmd,
                         primary.VolumeSizeReply)
DELETE_VOLUME = Endpoint(f"{PRIMARY}/delete", primary.VolumeCmd, common.CephReply)
CREATE_SNAPSHOT = Endpoint(f"{PRIMARY}/snapshot/create", primary.SnapshotCmd,
                           primary.SnapshotReply)
COMMIT_SNAPSHOT = Endpoint(f"{PRIMARY}/snapshot/commit", primary.SnapshotCmd,
                           primary.SnapshotReply)
DELETE_SNAPSHOT = Endpoint(f"{PRIMARY}/snapshot/delete", primary.SnapshotCmd,
                           primary.SnapshotReply)
ROLLBACK_SNAPSHOT = Endpoint(f"{PRIMARY}/snapshot/rollback", primary.SnapshotCmd,
                             primary.SnapshotReply)
# backup storage
INIT_BACKUP = Endpoint(f"{BACKUP}/init", backup.BackupInitCmd, backup.BackupInitReply)
PING_BACKUP = Endpoint(f"{BACKUP}/ping", common.PingCmd, common.ConnectReply)
DOWNLOAD_IMAGE = Endpoint(f"{BACKUP}/image/download", backup.DownloadImageCmd,
                          backup.DownloadImageReply, is_async=True)
DELETE_IMAGE = Endpoint(f"{BACKUP}/image/delete", common.ImageSizeCmd, common.CephReply)


class CephAgent(Client):
    """The cephagents of one Ceph storage (primary or backup)."""

    @classmethod
    def at(cls, agents: AgentClient, urls: list[str],
           errors: Callable[[AgentCallError], Exception] | None = None) -> CephAgent:
        """Through the first of ``urls`` (one per mon, in order) that answers."""
        return cls(FirstAnswering(agents, tuple(urls), "cephagent"), errors)

    # -- primary storage ---------------------------------------------------------------

    def init_primary(self, *, wait: float | None = None,
                     **fields: Any) -> primary.PrimaryInitReply:
        return self.send(INIT_PRIMARY, fields, wait)

    def ping_primary(self, *, wait: float | None = None, **fields: Any) -> common.ConnectReply:
        return self.send(PING_PRIMARY, fields, wait)

    def create_empty_volume(self, *, wait: float | None = None,
                            **fields: Any) -> common.CephReply:
        return self.send(CREATE_EMPTY_VOLUME, fields, wait)

    def copy_volume(self, *, wait: float, **fields: Any) -> common.CephReply:
        return self.send(COPY_VOLUME, fields, wait)

    def clone_volume(self, *, wait: float | None = None, **fields: Any) -> common.CephReply:
        return self.send(CLONE_VOLUME, fields, wait)

    def resize_volume(self, *, wait: float | None = None,
                      **fields: Any) -> primary.VolumeSizeReply:
        return self.send(RESIZE_VOLUME, fields, wait)

    def delete_volume(self, *, wait: float | None = None, **fields: Any) -> common.CephReply:
        return self.send(DELETE_VOLUME, fields, wait)

    def create_snapshot(self, *, wait: float | None = None,
                        **fields: Any) -> primary.SnapshotReply:
        return self.send(CREATE_SNAPSHOT, fields, wait)

    def commit_snapshot(self, *, wait: float | None = None,
                        **fields: Any) -> primary.SnapshotReply:
        return self.send(COMMIT_SNAPSHOT, fields, wait)

    def delete_snapshot(self, *, wait: float | None = None,
                        **fields: Any) -> primary.SnapshotReply:
        return self.send(DELETE_SNAPSHOT, fields, wait)

    def rollback_snapshot(self, *, wait: float | None = None,
                          **fields: Any) -> primary.SnapshotReply:
        return self.send(ROLLBACK_SNAPSHOT, fields, wait)

    # -- backup storage ----------------------------------------------------------------

    def init_backup(self, *, wait: float | None = None,
                    **fields: Any) -> backup.BackupInitReply:
        return self.send(INIT_BACKUP, fields, wait)

    def ping_backup(self, *, wait: float | None = None, **fields: Any) -> common.ConnectReply:
        return self.send(PING_BACKUP, fields, wait)

    def download_image(self, *, wait: float, **fields: Any) -> backup.DownloadImageReply:
        return self.send(DOWNLOAD_IMAGE, fields, wait)

    def delete_image(self, *, wait: float | None = None, **fields: Any) -> common.CephReply:
        return self.send(DELETE_IMAGE, fields, wait)
