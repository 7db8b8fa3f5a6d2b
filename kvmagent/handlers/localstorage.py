"""File-volume storage: local storage, shared mount point storage, offline volume resize.

Paths are checked twice: the models refuse malformed ones (400), and each path must lie
inside a storage root this host set up (``/localstorage/init``, ``.../connect``), else
the command fails naming the field and the roots, before anything is touched. A root
itself must lie inside the operator's ``--storage-roots`` and be no system directory
(a 400 naming the field): a command alone never makes ``/etc`` a storage. Work on
one volume holds the lock ``volume:<path>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agentlib import storageroot
from agentlib.agent import Agent
from agentlib.errors import AgentError, BadRequest
from agentlib.locks import NamedLocks
from agentlib.routes import Routes
from kvmagent.config import KvmAgentConfig
from kvmagent.drivers.filestorage import FileStorage, StorageError
from kvmagent.drivers.storage_roots import StorageRoots
from kvmagent.models.storage import (
    CapacityReply,
    CreateEmptyVolumeCmd,
    CreateVolumeFromCacheCmd,
    DeleteBitsCmd,
    GetPhysicalCapacityCmd,
    LocalStorageInitCmd,
    MountPointCmd,
    ResizeVolumeCmd,
    ResizeVolumeReply,
    SmpCreateEmptyVolumeCmd,
    SmpCreateRootVolumeCmd,
    SmpDeleteBitsCmd,
)

STATE_FILE = "filestorage.json"
SMP = "/sharedmountpointprimarystorage"

routes = Routes()


@contextmanager
def about_field(field: str) -> Iterator[None]:
    """A storage error caused by ``field``'s value becomes a failure naming the field."""
    try:
        yield
    except StorageError as exc:
        raise AgentError(f"{field}: {exc}") from None


def _capacity(storage: FileStorage) -> CapacityReply:
    total, available = storage.capacity()
    return CapacityReply(total_capacity=total, available_capacity=available)


@dataclass
class Storages:
    """What the handlers work on: the roots this host serves, the operator's allow-list
    (``--storage-roots``) and the agent's locks."""

    roots: StorageRoots
    config: KvmAgentConfig
    locks: NamedLocks

    def new(self, field: str, path: str, *, shared: bool) -> FileStorage:
        """A storage at ``path``, which must be allowed by ``--storage-roots``."""
        try:
            storageroot.allowed_root(path, self.config.storage_roots, self.config.data_dir)
        except ValueError as exc:
            raise BadRequest(f"{field}: {exc}") from None
        return FileStorage(path, shared=shared)

    def locate(self, field: str, path: str, *, shared: bool | None,
               mount_point: str | None = None) -> tuple[FileStorage, Path]:
        """The storage ``path`` lies in and its real path (``mount_point`` picks the
        shared mount point when the command names one)."""
        if mount_point is not None:
            with about_field("mountPoint"):
                storage = self.roots.get(mount_point, shared=True)
        else:
            with about_field(field):
                storage = self.roots.find(path, shared=shared)
        with about_field(field):
            return storage, storage.resolve(path)

    def volume(self, path: Path):
        return self.locks.hold(f"volume:{path}")


def register(agent: Agent, config: KvmAgentConfig) -> None:
    roots = StorageRoots(Path(config.data_dir) / STATE_FILE)
    agent.include(routes, Storages(roots, config, agent.locks))


def _create_empty(storages: Storages, storage: FileStorage, target: Path,
                  size: int) -> CapacityReply:
    with storages.volume(target):
        storage.create_empty(target, size)
    return _capacity(storage)


def _create_from_cache(storages: Storages, storage: FileStorage, target: Path,
                       cache: str) -> CapacityReply:
    with about_field("templatePathInCache"):
        cache_path = storage.resolve(cache)
    with storages.volume(target):
        storage.create_from_cache(target, cache_path)
    return _capacity(storage)


def _delete(storages: Storages, storage: FileStorage, target: Path) -> CapacityReply:
    with storages.volume(target):
        storage.delete(target)
    return _capacity(storage)


# -- local storage -------------------------------------------------------------------------


@routes.sync("/localstorage/init")
def init(storages: Storages, cmd: LocalStorageInitCmd) -> CapacityReply:
    """Create the local storage root if missing and keep volumes under it."""
    storage = storages.new("path", cmd.path, shared=False)
    with about_field("path"):
        storage.init()
    storages.roots.add(storage)
    return _capacity(storage)


@routes.sync("/localstorage/getphysicalcapacity", quiet=True)
def get_physical_capacity(storages: Storages, cmd: GetPhysicalCapacityCmd) -> CapacityReply:
    """Total and available bytes of a local storage's filesystem."""
    if cmd.storage_path is not None:
        with about_field("storagePath"):
            return _capacity(storages.roots.get(cmd.storage_path, shared=False))
    local = storages.roots.storages(shared=False)
    if not local:
        raise AgentError("no local storage on this host: /localstorage/init first")
    if len(local) > 1:
        raise AgentError("storagePath: this host has several local storages ("
                         f"{', '.join(str(s.root) for s in local)}): name one")
    return _capacity(local[0])


@routes.sync("/localstorage/volume/createempty")
def local_create_empty(storages: Storages, cmd: CreateEmptyVolumeCmd) -> CapacityReply:
    """A new empty qcow2 volume of ``size`` bytes at ``installUrl``."""
    storage, target = storages.locate("installUrl", cmd.install_url, shared=False)
    return _create_empty(storages, storage, target, cmd.size)


@routes.sync("/localstorage/volume/createvolumefromcache")
def local_create_from_cache(storages: Storages, cmd: CreateVolumeFromCacheCmd
                            ) -> CapacityReply:
    """A qcow2 volume at ``installUrl`` backed by the cached image (copy-on-write)."""
    storage, target = storages.locate("installUrl", cmd.install_url, shared=False)
    return _create_from_cache(storages, storage, target, cmd.template_path_in_cache)


@routes.sync("/localstorage/delete")
def local_delete(storages: Storages, cmd: DeleteBitsCmd) -> CapacityReply:
    """Delete a volume file (a missing one is success)."""
    storage, target = storages.locate("path", cmd.path, shared=False)
    return _delete(storages, storage, target)


@routes.sync("/volume/resize")
def resize(storages: Storages, cmd: ResizeVolumeCmd) -> ResizeVolumeReply:
    """Grow a file volume no VM is running on (shrinking is refused)."""
    storage, target = storages.locate("installPath", cmd.install_path, shared=None)
    with storages.volume(target):
        size = storage.resize(target, cmd.size)
    return ResizeVolumeReply(size=size)


# -- shared mount point storage ------------------------------------------------------------


@routes.sync(f"{SMP}/connect")
def smp_connect(storages: Storages, cmd: MountPointCmd) -> CapacityReply:
    """Serve volumes under an already mounted shared filesystem (checked writable)."""
    storage = storages.new("mountPoint", cmd.mount_point, shared=True)
    with about_field("mountPoint"):
        storage.init()
    storages.roots.add(storage)
    return _capacity(storage)


@routes.sync(f"{SMP}/getcapacity", quiet=True)
def smp_get_capacity(storages: Storages, cmd: MountPointCmd) -> CapacityReply:
    """Total and available bytes of a connected shared mount point."""
    with about_field("mountPoint"):
        return _capacity(storages.roots.get(cmd.mount_point, shared=True))


@routes.sync(f"{SMP}/createrootvolume")
def smp_create_root_volume(storages: Storages, cmd: SmpCreateRootVolumeCmd) -> CapacityReply:
    """A qcow2 volume at ``installPath`` backed by the cached image (copy-on-write)."""
    storage, target = storages.locate("installPath", cmd.install_path, shared=True,
                                      mount_point=cmd.mount_point)
    return _create_from_cache(storages, storage, target, cmd.template_path_in_cache)


@routes.sync(f"{SMP}/createemptyvolume")
@routes.sync(f"{SMP}/volume/createempty")
def smp_create_empty(storages: Storages, cmd: SmpCreateEmptyVolumeCmd) -> CapacityReply:
    """A new empty qcow2 volume of ``size`` bytes at ``installPath``."""
    storage, target = storages.locate("installPath", cmd.install_path, shared=True,
                                      mount_point=cmd.mount_point)
    return _create_empty(storages, storage, target, cmd.size)


@routes.sync(f"{SMP}/delete")
@routes.sync(f"{SMP}/bits/delete")
def smp_delete(storages: Storages, cmd: SmpDeleteBitsCmd) -> CapacityReply:
    """Delete a volume file (a missing one is success)."""
    storage, target = storages.locate("path", cmd.path, shared=True,
                                      mount_point=cmd.mount_point)
    return _delete(storages, storage, target)
