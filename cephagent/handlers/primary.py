"""``/ceph/primarystorage/*``: pools, volumes (clones of image-cache snapshots), snapshots.

Thin: parse, lock the images touched, call the driver, stamp fsid and capacity.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic.alias_generators import to_camel

from agentlib.errors import AgentError
from agentlib.routes import Routes
from agentlib.tasks import Task
from cephagent.handlers.common import Ceph, mon_tos
from cephagent.models.common import CephReply, ImageSizeCmd, ImageSizeReply
from cephagent.models.paths import RbdPath
from cephagent.models.primary import (
    AddPoolCmd,
    CloneVolumeCmd,
    CopyVolumeCmd,
    CreateEmptyVolumeCmd,
    DeleteImageCacheCmd,
    FlattenVolumeCmd,
    PrimaryInitCmd,
    PrimaryInitReply,
    ResizeVolumeCmd,
    SnapshotCmd,
    SnapshotReply,
    VolumeCmd,
    VolumeSizeReply,
)

PREFIX = "/ceph/primarystorage"

routes = Routes()


@routes.sync(f"{PREFIX}/init")
def init(ceph: Ceph, cmd: PrimaryInitCmd) -> PrimaryInitReply:
    """Check the named pools exist, create the unnamed ones; repeating it is harmless.
    Images an interrupted ``volume/cp`` left under a temporary name are removed."""
    client = ceph.client
    names = cmd.pool_names()
    named = {f: n for f, n in names.items() if getattr(cmd, f) is not None}
    missing = {f: n for f, n in named.items() if not client.pool_exists(n)}
    if missing:  # checked before anything is created: a failed init creates nothing
        raise AgentError("; ".join(f"{to_camel(f)}: pool {n} does not exist"
                                   for f, n in missing.items()))
    created = [n for f, n in names.items() if f not in named and client.ensure_pool(n)]
    ceph.sweep(list(names.values()))
    return ceph.stamp(PrimaryInitReply(**names, created_pools=created,
                                       mons=mon_tos(client.mons()),
                                       user_key=client.user_key()))


@routes.sync(f"{PREFIX}/addpool")
def addpool(ceph: Ceph, cmd: AddPoolCmd) -> CephReply:
    """Create pool ``poolName`` if ``isCreate``, else require that it exists."""
    if cmd.is_create:
        ceph.client.ensure_pool(cmd.pool_name)
    elif not ceph.client.pool_exists(cmd.pool_name):
        raise AgentError(f"poolName: pool {cmd.pool_name} does not exist")
    return ceph.stamp(CephReply())


@routes.sync(f"{PREFIX}/volume/createempty")
def create_empty(ceph: Ceph, cmd: CreateEmptyVolumeCmd) -> CephReply:
    """An empty (thin) image of ``size`` bytes at ``installPath``."""
    path = RbdPath.parse(cmd.install_path)
    with ceph.lock(path):
        ceph.images.create_empty(path, cmd.size)
    return ceph.stamp(CephReply())


@routes.sync(f"{PREFIX}/volume/clone")
def clone(ceph: Ceph, cmd: CloneVolumeCmd) -> CephReply:
    """A copy-on-write clone of the protected snapshot ``srcPath`` at ``dstPath``."""
    src, dst = RbdPath.parse(cmd.src_path), RbdPath.parse(cmd.dst_path)
    with ceph.lock(dst):
        ceph.images.clone(src, dst)
    return ceph.stamp(CephReply())


@routes.async_(f"{PREFIX}/volume/flatten", long=True)
def flatten(ceph: Ceph, cmd: FlattenVolumeCmd, task: Task) -> CephReply:
    """Copy the parent's data into the clone so it stands alone (with progress)."""
    path = RbdPath.parse(cmd.install_path)
    task.check_cancelled()
    with ceph.lock(path):
        size = ceph.images.size(path).size
        progress = ceph.board.start(cmd.volume_uuid or str(path), size, task_uuid=task.uuid,
                                    stage="flatten")

        def on_progress(done: int, total: int) -> int:  # librbd counts objects
            progress.add(done * size // max(total, 1) - progress.bytes_done)
            return 0

        ceph.images.flatten(path, on_progress)
        progress.done()
    return ceph.stamp(CephReply())


@routes.async_(f"{PREFIX}/volume/cp", long=True)
def cp(ceph: Ceph, cmd: CopyVolumeCmd, task: Task) -> CephReply:
    """A full copy of image or snapshot ``srcPath`` at ``dstPath``."""
    src, dst = RbdPath.parse(cmd.src_path), RbdPath.parse(cmd.dst_path)
    task.check_cancelled()
    with ceph.lock(dst):
        ceph.images.copy(src, dst)
    return ceph.stamp(CephReply())


@routes.sync(f"{PREFIX}/volume/resize")
def resize(ceph: Ceph, cmd: ResizeVolumeCmd) -> VolumeSizeReply:
    """Grow ``installPath`` to ``size`` bytes (shrinking is refused)."""
    path = RbdPath.parse(cmd.install_path)
    with ceph.lock(path):
        ceph.images.resize(path, cmd.size)
        size = ceph.images.size(path).size
    return ceph.stamp(VolumeSizeReply(size=size))


@routes.sync(f"{PREFIX}/getvolumesize", quiet=True)
def getvolumesize(ceph: Ceph, cmd: ImageSizeCmd) -> ImageSizeReply:
    """Virtual size and the bytes the volume itself allocated (not its parent's)."""
    s = ceph.images.size(RbdPath.parse(cmd.install_path))
    return ceph.stamp(ImageSizeReply(size=s.size, actual_size=s.actual_size))


@routes.sync(f"{PREFIX}/delete")
def delete(ceph: Ceph, cmd: VolumeCmd) -> CephReply:
    """Delete a volume; one with snapshots (or clones) fails and stays."""
    path = RbdPath.parse(cmd.install_path)
    with ceph.lock(path):
        ceph.images.delete(path)
    return ceph.stamp(CephReply())


@routes.sync(f"{PREFIX}/deleteimagecache")
def deleteimagecache(ceph: Ceph, cmd: DeleteImageCacheCmd) -> CephReply:
    """Delete an image-cache image and its snapshots, unless a volume is cloned from it."""
    path = RbdPath.parse(cmd.image_path)
    if cmd.snapshot_path is not None and RbdPath.parse(cmd.snapshot_path).image_path != path:
        raise AgentError(f"snapshotPath: {cmd.snapshot_path} is not a snapshot of "
                         f"{cmd.image_path}")
    with ceph.lock(path):
        ceph.images.purge(path)
    return ceph.stamp(CephReply())


# -- snapshots: each the same steps around one RbdImages operation -------------------------


def _on_snapshot(ceph: Ceph, cmd: SnapshotCmd,
                 op: Callable[[RbdPath], None]) -> SnapshotReply:
    snap = RbdPath.parse(cmd.snapshot_path)
    with ceph.lock(snap):
        op(snap)
        size = ceph.images.size(snap.image_path).size if ceph.images.exists(
            snap.image_path) else 0
    return ceph.stamp(SnapshotReply(size=size))


@routes.sync(f"{PREFIX}/snapshot/create")
def snapshot_create(ceph: Ceph, cmd: SnapshotCmd) -> SnapshotReply:
    """Create snapshot ``snapshotPath``."""
    return _on_snapshot(ceph, cmd, ceph.images.create_snapshot)


@routes.sync(f"{PREFIX}/snapshot/delete")
def snapshot_delete(ceph: Ceph, cmd: SnapshotCmd) -> SnapshotReply:
    """Delete snapshot ``snapshotPath``; a protected one fails."""
    return _on_snapshot(ceph, cmd, ceph.images.delete_snapshot)


@routes.sync(f"{PREFIX}/snapshot/protect")
def snapshot_protect(ceph: Ceph, cmd: SnapshotCmd) -> SnapshotReply:
    """Protect ``snapshotPath`` so it can be cloned."""
    return _on_snapshot(ceph, cmd, ceph.images.protect)


@routes.sync(f"{PREFIX}/snapshot/unprotect")
def snapshot_unprotect(ceph: Ceph, cmd: SnapshotCmd) -> SnapshotReply:
    """Unprotect ``snapshotPath``; fails while it has clones."""
    return _on_snapshot(ceph, cmd, ceph.images.unprotect)


@routes.sync(f"{PREFIX}/snapshot/rollback")
def snapshot_rollback(ceph: Ceph, cmd: SnapshotCmd) -> SnapshotReply:
    """Roll the image back to ``snapshotPath``."""
    return _on_snapshot(ceph, cmd, ceph.images.rollback)


@routes.sync(f"{PREFIX}/snapshot/commit")
def snapshot_commit(ceph: Ceph, cmd: SnapshotCmd) -> SnapshotReply:
    """Create and protect ``snapshotPath``: ready to clone volumes from."""
    return _on_snapshot(ceph, cmd, ceph.images.commit)
