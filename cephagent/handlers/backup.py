"""``/ceph/backupstorage/*``: a pool of images downloaded from URLs, in the same cluster
as the primary storage (the fsid in every reply lets the coordinator check that)."""

from __future__ import annotations

from agentlib.errors import AgentError
from agentlib.routes import Routes
from agentlib.tasks import Task
from cephagent.handlers.common import Ceph
from cephagent.models.backup import (
    BackupInitCmd,
    BackupInitReply,
    DownloadImageCmd,
    DownloadImageReply,
    ImageProgressCmd,
    ImageProgressReply,
)
from cephagent.models.common import CephReply, ImageSizeCmd, ImageSizeReply
from cephagent.models.paths import RbdPath

PREFIX = "/ceph/backupstorage"

routes = Routes()


@routes.sync(f"{PREFIX}/init")
def init(ceph: Ceph, cmd: BackupInitCmd) -> BackupInitReply:
    """Check the named pool exists, or create ``bak-t-<uuid>``; repeating it is harmless.
    Half downloads an agent crash left (under a temporary name) are removed."""
    pool = cmd.pool()
    created = False
    if cmd.pool_name is not None:
        if not ceph.client.pool_exists(pool):
            raise AgentError(f"poolName: pool {pool} does not exist")
    else:
        created = ceph.client.ensure_pool(pool)
    ceph.sweep([pool])
    return ceph.stamp(BackupInitReply(pool_name=pool, created=created))


@routes.async_(f"{PREFIX}/image/download", long=True)
def download(ceph: Ceph, cmd: DownloadImageCmd, task: Task) -> DownloadImageReply:
    """Stream ``url`` into the RBD image ``installPath`` (qcow2 converted to raw)."""
    dst = RbdPath.parse(cmd.install_path)
    with ceph.lock(dst):
        progress = ceph.board.start(cmd.image_uuid, None, task_uuid=task.uuid)
        got = ceph.downloader.download(cmd.url, dst, progress, task.check_cancelled)
    return ceph.stamp(DownloadImageReply(
        install_path=cmd.install_path, size=got.size, actual_size=got.actual_size,
        md5_sum=got.md5, format=got.format))


@routes.sync(f"{PREFIX}/image/progress", quiet=True)
def progress(ceph: Ceph, cmd: ImageProgressCmd) -> ImageProgressReply:
    """How far the download of ``imageUuid`` is (100 once finished)."""
    return ceph.board.reply(cmd.image_uuid, ImageProgressReply)


@routes.sync(f"{PREFIX}/image/delete")
def delete(ceph: Ceph, cmd: ImageSizeCmd) -> CephReply:
    """Delete an image and its snapshots, unless a volume is cloned from one."""
    path = RbdPath.parse(cmd.install_path)
    with ceph.lock(path):
        ceph.images.purge(path)
    return ceph.stamp(CephReply())


@routes.sync(f"{PREFIX}/image/getsize", quiet=True)
def getsize(ceph: Ceph, cmd: ImageSizeCmd) -> ImageSizeReply:
    """Virtual size and allocated bytes of an image."""
    s = ceph.images.size(RbdPath.parse(cmd.install_path))
    return ceph.stamp(ImageSizeReply(size=s.size, actual_size=s.actual_size))
