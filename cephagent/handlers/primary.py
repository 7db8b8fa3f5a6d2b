"""``/ceph/primarystorage/*``: pools, volumes (clones of image-cache snapshots), snapshots.

Thin: parse, lock the images touched, call the driver, stamp fsid and capacity.
"""

from __future__ import annotations

from pydantic.alias_generators import to_camel

from agentlib.agent import Agent
from agentlib.errors import AgentError
from agentlib.progress import ProgressBoard
from agentlib.tasks import Task
from cephagent.drivers.cluster import CephClient
from cephagent.drivers.images import RbdImages
from cephagent.drivers.paths import RbdPath
from cephagent.handlers.common import image_lock, mon_tos, stamp, sweep
from cephagent.models.common import CephReply, ImageSizeCmd, ImageSizeReply
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


def register(agent: Agent, client: CephClient, images: RbdImages,
             board: ProgressBoard) -> None:
    p = PREFIX

    @agent.sync(f"{p}/init")
    def init(cmd: PrimaryInitCmd) -> PrimaryInitReply:
        """Check the named pools exist, create the unnamed ones; repeating it is harmless.
        Images an interrupted ``volume/cp`` left under a temporary name are removed."""
        names = cmd.pool_names()
        named = {f: n for f, n in names.items() if getattr(cmd, f) is not None}
        missing = {f: n for f, n in named.items() if not client.pool_exists(n)}
        if missing:  # checked before anything is created: a failed init creates nothing
            raise AgentError("; ".join(f"{to_camel(f)}: pool {n} does not exist"
                                       for f, n in missing.items()))
        created = [n for f, n in names.items() if f not in named and client.ensure_pool(n)]
        sweep(agent, images, list(names.values()))
        return stamp(client, PrimaryInitReply(**names, created_pools=created,
                                              mons=mon_tos(client.mons()),
                                              user_key=client.user_key()))

    @agent.sync(f"{p}/addpool")
    def addpool(cmd: AddPoolCmd) -> CephReply:
        """Create pool ``poolName`` if ``isCreate``, else require that it exists."""
        if cmd.is_create:
            client.ensure_pool(cmd.pool_name)
        elif not client.pool_exists(cmd.pool_name):
            raise AgentError(f"poolName: pool {cmd.pool_name} does not exist")
        return stamp(client, CephReply())

    @agent.sync(f"{p}/volume/createempty")
    def create_empty(cmd: CreateEmptyVolumeCmd) -> CephReply:
        """An empty (thin) image of ``size`` bytes at ``installPath``."""
        path = RbdPath.parse(cmd.install_path)
        with image_lock(agent, path):
            images.create_empty(path, cmd.size)
        return stamp(client, CephReply())

    @agent.sync(f"{p}/volume/clone")
    def clone(cmd: CloneVolumeCmd) -> CephReply:
        """A copy-on-write clone of the protected snapshot ``srcPath`` at ``dstPath``."""
        src, dst = RbdPath.parse(cmd.src_path), RbdPath.parse(cmd.dst_path)
        with image_lock(agent, dst):
            images.clone(src, dst)
        return stamp(client, CephReply())

    @agent.async_(f"{p}/volume/flatten", long=True)
    def flatten(cmd: FlattenVolumeCmd, task: Task) -> CephReply:
        """Copy the parent's data into the clone so it stands alone (with progress)."""
        path = RbdPath.parse(cmd.install_path)
        task.check_cancelled()
        with image_lock(agent, path):
            size = images.size(path).size
            progress = board.start(cmd.volume_uuid or str(path), size, task_uuid=task.uuid,
                                   stage="flatten")

            def on_progress(done: int, total: int) -> int:  # librbd counts objects
                progress.add(done * size // max(total, 1) - progress.bytes_done)
                return 0

            images.flatten(path, on_progress)
            progress.done()
        return stamp(client, CephReply())

    @agent.async_(f"{p}/volume/cp", long=True)
    def cp(cmd: CopyVolumeCmd, task: Task) -> CephReply:
        """A full copy of image or snapshot ``srcPath`` at ``dstPath``."""
        src, dst = RbdPath.parse(cmd.src_path), RbdPath.parse(cmd.dst_path)
        task.check_cancelled()
        with image_lock(agent, dst):
            images.copy(src, dst)
        return stamp(client, CephReply())

    @agent.sync(f"{p}/volume/resize")
    def resize(cmd: ResizeVolumeCmd) -> VolumeSizeReply:
        """Grow ``installPath`` to ``size`` bytes (shrinking is refused)."""
        path = RbdPath.parse(cmd.install_path)
        with image_lock(agent, path):
            images.resize(path, cmd.size)
            size = images.size(path).size
        return stamp(client, VolumeSizeReply(size=size))

    @agent.sync(f"{p}/getvolumesize", quiet=True)
    def getvolumesize(cmd: ImageSizeCmd) -> ImageSizeReply:
        """Virtual size and the bytes the volume itself allocated (not its parent's)."""
        s = images.size(RbdPath.parse(cmd.install_path))
        return stamp(client, ImageSizeReply(size=s.size, actual_size=s.actual_size))

    @agent.sync(f"{p}/delete")
    def delete(cmd: VolumeCmd) -> CephReply:
        """Delete a volume; one with snapshots (or clones) fails and stays."""
        path = RbdPath.parse(cmd.install_path)
        with image_lock(agent, path):
            images.delete(path)
        return stamp(client, CephReply())

    @agent.sync(f"{p}/deleteimagecache")
    def deleteimagecache(cmd: DeleteImageCacheCmd) -> CephReply:
        """Delete an image-cache image and its snapshots, unless a volume is cloned from it."""
        path = RbdPath.parse(cmd.image_path)
        if cmd.snapshot_path is not None and RbdPath.parse(cmd.snapshot_path).image_path != path:
            raise AgentError(f"snapshotPath: {cmd.snapshot_path} is not a snapshot of "
                             f"{cmd.image_path}")
        with image_lock(agent, path):
            images.purge(path)
        return stamp(client, CephReply())

    def snapshot_op(name: str, op, doc: str) -> None:
        def handler(cmd: SnapshotCmd) -> SnapshotReply:
            snap = RbdPath.parse(cmd.snapshot_path)
            with image_lock(agent, snap):
                op(snap)
                size = images.size(snap.image_path).size if images.exists(
                    snap.image_path) else 0
            return stamp(client, SnapshotReply(size=size))

        handler.__doc__ = doc
        handler.__name__ = handler.__qualname__ = f"snapshot_{name}"
        agent.sync(f"{p}/snapshot/{name}")(handler)

    snapshot_op("create", images.create_snapshot, "Create snapshot ``snapshotPath``.")
    snapshot_op("delete", images.delete_snapshot,
                "Delete snapshot ``snapshotPath``; a protected one fails.")
    snapshot_op("protect", images.protect, "Protect ``snapshotPath`` so it can be cloned.")
    snapshot_op("unprotect", images.unprotect,
                "Unprotect ``snapshotPath``; fails while it has clones.")
    snapshot_op("rollback", images.rollback, "Roll the image back to ``snapshotPath``.")
    snapshot_op("commit", images.commit,
                "Create and protect ``snapshotPath``: ready to clone volumes from.")
