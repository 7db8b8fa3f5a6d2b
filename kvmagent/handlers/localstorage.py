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
from pathlib import Path

from agentlib import storageroot
from agentlib.agent import Agent
from agentlib.errors import AgentError, BadRequest
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


def register(agent: Agent, config: KvmAgentConfig) -> None:
    roots = StorageRoots(Path(config.data_dir) / STATE_FILE)

    def new_storage(field: str, path: str, *, shared: bool) -> FileStorage:
        """A storage at ``path``, which must be allowed by ``--storage-roots``."""
        try:
            storageroot.allowed_root(path, config.storage_roots, config.data_dir)
        except ValueError as exc:
            raise BadRequest(f"{field}: {exc}") from None
        return FileStorage(path, shared=shared)

    def locate(field: str, path: str, *, shared: bool | None,
               mount_point: str | None = None) -> tuple[FileStorage, Path]:
        """The storage ``path`` lies in and its real path (``mount_point`` picks the
        shared mount point when the command names one)."""
        if mount_point is not None:
            with about_field("mountPoint"):
                storage = roots.get(mount_point, shared=True)
        else:
            with about_field(field):
                storage = roots.find(path, shared=shared)
        with about_field(field):
            return storage, storage.resolve(path)

    def volume(path: Path):
        return agent.locks.hold(f"volume:{path}")

    def create_empty(storage: FileStorage, target: Path, size: int) -> CapacityReply:
        with volume(target):
            storage.create_empty(target, size)
        return _capacity(storage)

    def create_from_cache(storage: FileStorage, target: Path, cache: str) -> CapacityReply:
        with about_field("templatePathInCache"):
            cache_path = storage.resolve(cache)
        with volume(target):
            storage.create_from_cache(target, cache_path)
        return _capacity(storage)

    def delete(storage: FileStorage, target: Path) -> CapacityReply:
        with volume(target):
            storage.delete(target)
        return _capacity(storage)

    # -- local storage -----------------------------------------------------------------

    @agent.sync("/localstorage/init")
    def init(cmd: LocalStorageInitCmd) -> CapacityReply:
        """Create the local storage root if missing and keep volumes under it."""
        storage = new_storage("path", cmd.path, shared=False)
        with about_field("path"):
            storage.init()
        roots.add(storage)
        return _capacity(storage)

    @agent.sync("/localstorage/getphysicalcapacity", quiet=True)
    def get_physical_capacity(cmd: GetPhysicalCapacityCmd) -> CapacityReply:
        """Total and available bytes of a local storage's filesystem."""
        if cmd.storage_path is not None:
            with about_field("storagePath"):
                return _capacity(roots.get(cmd.storage_path, shared=False))
        local = roots.storages(shared=False)
        if not local:
            raise AgentError("no local storage on this host: /localstorage/init first")
        if len(local) > 1:
            raise AgentError("storagePath: this host has several local storages ("
                             f"{', '.join(str(s.root) for s in local)}): name one")
        return _capacity(local[0])

    @agent.sync("/localstorage/volume/createempty")
    def local_create_empty(cmd: CreateEmptyVolumeCmd) -> CapacityReply:
        """A new empty qcow2 volume of ``size`` bytes at ``installUrl``."""
        storage, target = locate("installUrl", cmd.install_url, shared=False)
        return create_empty(storage, target, cmd.size)

    @agent.sync("/localstorage/volume/createvolumefromcache")
    def local_create_from_cache(cmd: CreateVolumeFromCacheCmd) -> CapacityReply:
        """A qcow2 volume at ``installUrl`` backed by the cached image (copy-on-write)."""
        storage, target = locate("installUrl", cmd.install_url, shared=False)
        return create_from_cache(storage, target, cmd.template_path_in_cache)

    @agent.sync("/localstorage/delete")
    def local_delete(cmd: DeleteBitsCmd) -> CapacityReply:
        """Delete a volume file (a missing one is success)."""
        storage, target = locate("path", cmd.path, shared=False)
        return delete(storage, target)

    @agent.sync("/volume/resize")
    def resize(cmd: ResizeVolumeCmd) -> ResizeVolumeReply:
        """Grow a file volume no VM is running on (shrinking is refused)."""
        storage, target = locate("installPath", cmd.install_path, shared=None)
        with volume(target):
            size = storage.resize(target, cmd.size)
        return ResizeVolumeReply(size=size)

    # -- shared mount point storage ------------------------------------------------------

    @agent.sync(f"{SMP}/connect")
    def smp_connect(cmd: MountPointCmd) -> CapacityReply:
        """Serve volumes under an already mounted shared filesystem (checked writable)."""
        storage = new_storage("mountPoint", cmd.mount_point, shared=True)
        with about_field("mountPoint"):
            storage.init()
        roots.add(storage)
        return _capacity(storage)

    @agent.sync(f"{SMP}/getcapacity", quiet=True)
    def smp_get_capacity(cmd: MountPointCmd) -> CapacityReply:
        """Total and available bytes of a connected shared mount point."""
        with about_field("mountPoint"):
            return _capacity(roots.get(cmd.mount_point, shared=True))

    @agent.sync(f"{SMP}/createrootvolume")
    def smp_create_root_volume(cmd: SmpCreateRootVolumeCmd) -> CapacityReply:
        """A qcow2 volume at ``installPath`` backed by the cached image (copy-on-write)."""
        storage, target = locate("installPath", cmd.install_path, shared=True,
                                 mount_point=cmd.mount_point)
        return create_from_cache(storage, target, cmd.template_path_in_cache)

    @agent.sync(f"{SMP}/createemptyvolume")
    @agent.sync(f"{SMP}/volume/createempty")
    def smp_create_empty(cmd: SmpCreateEmptyVolumeCmd) -> CapacityReply:
        """A new empty qcow2 volume of ``size`` bytes at ``installPath``."""
        storage, target = locate("installPath", cmd.install_path, shared=True,
                                 mount_point=cmd.mount_point)
        return create_empty(storage, target, cmd.size)

    @agent.sync(f"{SMP}/delete")
    @agent.sync(f"{SMP}/bits/delete")
    def smp_delete(cmd: SmpDeleteBitsCmd) -> CapacityReply:
        """Delete a volume file (a missing one is success)."""
        storage, target = locate("path", cmd.path, shared=True, mount_point=cmd.mount_point)
        return delete(storage, target)
