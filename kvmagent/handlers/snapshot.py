"""Volume snapshots of file volumes, whether or not their VM runs (ZStack's external
snapshot scheme: the current file becomes the snapshot, a new overlay the volume).

A running VM's volume is snapshotted and merged by libvirt (drivers.livesnapshot), a
stopped one's by qemu-img (drivers.filestorage); both leave the same files and backing
chain. Every path must lie inside a storage root this host serves (the roots that
``/localstorage/init`` and ``/sharedmountpointprimarystorage/connect`` recorded), or the
command fails naming the field before anything is touched. Each command holds the VM's
lock (when it names one) and ``volume:<path>`` of every file it reads or writes, the
lock names the storage handlers use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agentlib.agent import Agent
from agentlib.config import AgentConfig
from agentlib.errors import AgentError
from agentlib.locks import NamedLocks
from agentlib.models import AgentReply
from agentlib.routes import Routes
from agentlib.tasks import Task
from kvmagent.drivers.filestorage import FileStorage
from kvmagent.drivers.livesnapshot import LiveSnapshots, backing_of
from kvmagent.drivers.qemu_img import QemuImgError
from kvmagent.drivers.storage_roots import StorageRoots
from kvmagent.drivers.vms import VmDriver
from kvmagent.handlers.localstorage import STATE_FILE, about_field
from kvmagent.models.snapshot import (
    MergeSnapshotCmd,
    TakeSnapshotCmd,
    TakeSnapshotReply,
    VolumeSnapshotCmd,
)

routes = Routes()


def _overlay_on(overlay: Path, volume: Path) -> bool:
    """Whether ``overlay`` is a qcow2 overlay on ``volume`` (a snapshot already taken)."""
    try:
        return backing_of(overlay) == str(volume)
    except QemuImgError:
        return False  # not an image at all


@dataclass
class Snapshots:
    """What the handlers work on: live snapshots through libvirt, the storage handlers'
    state file (the roots) and the agent's locks."""

    live: LiveSnapshots
    roots_file: Path
    locks: NamedLocks

    def locate(self, field: str, path: str) -> tuple[FileStorage, Path]:
        """The storage ``path`` lies in, and its real path. The roots are read from the
        storage handlers' state file each time: a root added since is served at once."""
        with about_field(field):
            storage = StorageRoots(self.roots_file).find(path)
            return storage, storage.resolve(path)

    def lock(self, cmd: VolumeSnapshotCmd, *paths: Path):
        vm = [f"vm:{cmd.vm_uuid}"] if cmd.vm_uuid else []
        return self.locks.hold(*vm, *(f"volume:{p}" for p in paths))


def register(agent: Agent, vms: VmDriver, cfg: AgentConfig) -> None:
    agent.include(routes, Snapshots(LiveSnapshots(vms), Path(cfg.data_dir) / STATE_FILE,
                                    agent.locks))


def _inside(storage: FileStorage, field: str, path: str) -> Path:
    """``path`` must lie in the same storage as the volume: a backing chain never spans
    storages."""
    with about_field(field):
        return storage.resolve(path)


@routes.async_("/vm/volume/takesnapshot")
def take_snapshot(snaps: Snapshots, cmd: TakeSnapshotCmd, task: Task) -> TakeSnapshotReply:
    """Snapshot a file volume (through libvirt while its VM runs, else qemu-img).

    Its file becomes the snapshot; a new qcow2 overlay on it, at ``installPath``,
    becomes the volume. ``fullSnapshot`` flattens the volume first, so the snapshot
    needs no older one. A repeated command that already took effect succeeds."""
    storage, volume = snaps.locate("volume.installPath", cmd.volume.install_path)
    overlay = _inside(storage, "installPath", cmd.install_path)
    with snaps.lock(cmd, volume, overlay):
        fresh = not os.path.lexists(overlay)
        if not fresh and not _overlay_on(overlay, volume):  # else: a repeated command
            raise AgentError(f"installPath: {overlay} already exists: the new volume "
                             "file must be a new path")
        dom = snaps.live.running(cmd.vm_uuid)
        if dom is None:
            with about_field("volume.installPath"):
                if cmd.full_snapshot and fresh:
                    storage.merge_snapshot(volume)
                storage.take_snapshot(volume, overlay)
        else:
            disk = snaps.live.disk(dom, cmd.volume, {volume, overlay})
            if cmd.full_snapshot and fresh:
                with about_field("volume.installPath"):
                    storage.info(volume)  # its chain must stay inside the storage
                snaps.live.block_pull(dom, disk, None, cmd.timeout, lambda: task.cancelled)
            snaps.live.take_snapshot(dom, disk, volume, overlay, storage)
    return TakeSnapshotReply(snapshot_install_path=str(volume),
                             new_volume_install_path=str(overlay),
                             size=volume.stat().st_size)


@routes.async_("/vm/volume/mergesnapshot", long=True)
def merge_snapshot(snaps: Snapshots, cmd: MergeSnapshotCmd, task: Task) -> AgentReply:
    """Merge snapshots into the volume (a block pull while its VM runs).

    The data of the snapshots above ``srcPath`` (all of them with ``fullRebase``) is
    copied into the volume ``destPath``, whose backing file becomes ``srcPath`` (none).
    The guest sees the same data throughout."""
    storage, top = snaps.locate("destPath", cmd.dest_path)
    base = None if cmd.full_rebase else _inside(storage, "srcPath", cmd.src_path)
    with snaps.lock(cmd, top, *([base] if base else [])):
        with about_field("destPath"):
            chain = storage.info(top).chain
        below = {os.path.realpath(layer.filename): layer.filename for layer in chain[1:]}
        if base is not None and str(base) not in below:
            raise AgentError(f"srcPath: {base} is not in the backing chain of {top} "
                             f"({', '.join(below) or 'it has no backing file'})")
        backing_now = next(iter(below), None)  # the chain is listed top first
        dom = snaps.live.running(cmd.vm_uuid)
        if dom is None:
            with about_field("destPath"):
                storage.merge_snapshot(top, base)
        elif backing_now != (str(base) if base else None):  # else: nothing to pull
            disk = snaps.live.disk(dom, cmd.volume, {top})
            snaps.live.block_pull(dom, disk, below[str(base)] if base else None,
                                  cmd.timeout, lambda: task.cancelled)
    return AgentReply()
