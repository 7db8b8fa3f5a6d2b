"""``/ceph/backupstorage/*``: a pool of images downloaded from URLs, in the same cluster
as the primary storage (the fsid in every reply lets the coordinator check that)."""

from __future__ import annotations

from agentlib.agent import Agent
from agentlib.errors import AgentError
from agentlib.progress import ProgressBoard
from agentlib.tasks import Task
from cephagent.drivers.cluster import CephClient
from cephagent.drivers.download import ImageDownloader
from cephagent.drivers.images import RbdImages
from cephagent.drivers.paths import RbdPath
from cephagent.handlers.common import image_lock, stamp, sweep
from cephagent.models.backup import (
    BackupInitCmd,
    BackupInitReply,
    DownloadImageCmd,
    DownloadImageReply,
    ImageProgressCmd,
    ImageProgressReply,
)
from cephagent.models.common import CephReply, ImageSizeCmd, ImageSizeReply

PREFIX = "/ceph/backupstorage"


def register(agent: Agent, client: CephClient, images: RbdImages,
             downloader: ImageDownloader, board: ProgressBoard) -> None:
    p = PREFIX

    @agent.sync(f"{p}/init")
    def init(cmd: BackupInitCmd) -> BackupInitReply:
        """Check the named pool exists, or create ``bak-t-<uuid>``; repeating it is harmless.
        Half downloads an agent crash left (under a temporary name) are removed."""
        pool = cmd.pool()
        created = False
        if cmd.pool_name is not None:
            if not client.pool_exists(pool):
                raise AgentError(f"poolName: pool {pool} does not exist")
        else:
            created = client.ensure_pool(pool)
        sweep(agent, images, [pool])
        return stamp(client, BackupInitReply(pool_name=pool, created=created))

    @agent.async_(f"{p}/image/download", long=True)
    def download(cmd: DownloadImageCmd, task: Task) -> DownloadImageReply:
        """Stream ``url`` into the RBD image ``installPath`` (qcow2 converted to raw)."""
        dst = RbdPath.parse(cmd.install_path)
        with image_lock(agent, dst):
            progress = board.start(cmd.image_uuid, None, task_uuid=task.uuid)
            got = downloader.download(cmd.url, dst, progress, task.check_cancelled)
        return stamp(client, DownloadImageReply(
            install_path=cmd.install_path, size=got.size, actual_size=got.actual_size,
            md5_sum=got.md5, format=got.format))

    @agent.sync(f"{p}/image/progress", quiet=True)
    def progress(cmd: ImageProgressCmd) -> ImageProgressReply:
        """How far the download of ``imageUuid`` is (100 once finished)."""
        return board.reply(cmd.image_uuid, ImageProgressReply)

    @agent.sync(f"{p}/image/delete")
    def delete(cmd: ImageSizeCmd) -> CephReply:
        """Delete an image and its snapshots, unless a volume is cloned from one."""
        path = RbdPath.parse(cmd.install_path)
        with image_lock(agent, path):
            images.purge(path)
        return stamp(client, CephReply())

    @agent.sync(f"{p}/image/getsize", quiet=True)
    def getsize(cmd: ImageSizeCmd) -> ImageSizeReply:
        """Virtual size and allocated bytes of an image."""
        s = images.size(RbdPath.parse(cmd.install_path))
        return stamp(client, ImageSizeReply(size=s.size, actual_size=s.actual_size))
