"""File volumes under one root: local storage and shared mount point storage.

Both keep qcow2 files under a directory and do the same things to them; they differ only
in who makes the root. Local storage creates it; a shared mount point (a distributed
filesystem such as OCFS2, GlusterFS or MooseFS, mounted at the same path on every host)
must already be there, or volumes would silently land on the host's own disk.

Every path a command names is resolved (symlinks included) and must lie strictly inside
the root, so a hostile or buggy path never touches anything else on the host. Files are
created under a temporary name and renamed into place, and directories made for them are
removed again on failure: a failed command leaves nothing behind. Operations that
rewrite a volume refuse one a running VM holds (qemu's image lock tells).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agentlib import storageroot
from agentlib.errors import AgentError
from kvmagent.drivers import qemu_img
from kvmagent.drivers.qemu_img import ImageInfo


class StorageError(AgentError):
    """A file storage operation failed; the message names the path."""


class OutsideRoot(StorageError):
    """A path is not strictly inside the storage root."""


@dataclass(frozen=True)
class SnapshotResult:
    volume_path: Path
    """The new overlay: the volume's file from now on."""
    snapshot_path: Path
    """The former volume file, now the snapshot (the overlay's backing file)."""


class FileStorage:
    def __init__(self, root: str | Path, *, shared: bool = False):
        self.root = Path(os.path.normpath(root))
        self.shared = shared

    @property
    def kind(self) -> str:
        return "shared mount point" if self.shared else "local storage"

    @property
    def real_root(self) -> str:
        return os.path.realpath(self.root)

    def __repr__(self) -> str:
        return f"FileStorage({str(self.root)!r}, shared={self.shared})"

    # -- the storage -----------------------------------------------------------------

    def init(self) -> tuple[int, int]:
        """Make the root usable (local: create it; shared: it must exist) and prove it
        writable; returns :meth:`capacity`."""
        if self.real_root == "/":
            raise StorageError(f"refusing {self.root} as a {self.kind} root: it is /")
        if self.shared:
            if not self.root.is_dir():
                raise StorageError(f"shared mount point {self.root} does not exist or is not a "
                                   "directory: mount the shared filesystem there first")
        else:
            try:
                self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create local storage root {self.root}: "
                                   f"{exc.strerror}") from None
        try:
            storageroot.probe_writable(self.root)
        except OSError as exc:
            raise StorageError(f"{self.kind} {self.root} is not writable: {exc}") from None
        return self.capacity()

    def capacity(self) -> tuple[int, int]:
        """(total, available) bytes of the filesystem holding the root."""
        try:
            return storageroot.capacity(self.root)
        except OSError as exc:
            raise StorageError(f"cannot read the capacity of {self.kind} {self.root}: "
                               f"{exc.strerror}") from None

    def resolve(self, install_path: str | Path) -> Path:
        """The real path of ``install_path``; :class:`OutsideRoot` unless it lies strictly
        inside the root after ``..`` and every symlink are resolved."""
        try:
            return storageroot.resolve_inside(self.root, install_path, self.kind)
        except ValueError as exc:
            raise OutsideRoot(str(exc)) from None

    def contains(self, install_path: str | Path) -> bool:
        try:
            self.resolve(install_path)
        except OutsideRoot:
            return False
        return True

    # -- volumes ---------------------------------------------------------------------

    def create_empty(self, install_path: str | Path, size: int) -> Path:
        """A new empty qcow2 volume; an identical existing one is success (a retry)."""
        target = self.resolve(install_path)
        size = qemu_img.round_up(size)
        self._create(
            target, lambda tmp: qemu_img.create(tmp, size),
            lambda i: i.format == "qcow2" and i.virtual_size == size and not i.backing_file,
            f"an empty qcow2 of {size} bytes",
        )
        return target

    def create_from_cache(self, install_path: str | Path, cache_path: str | Path) -> Path:
        """A qcow2 volume backed by a cached image (copy-on-write, instant)."""
        target = self.resolve(install_path)
        cache = self._existing(cache_path, "image cache")
        fmt = self._image(cache).format
        self._create(
            target, lambda tmp: qemu_img.create_with_backing(tmp, cache, fmt),
            lambda i: i.format == "qcow2" and i.backing_file == str(cache),
            f"a qcow2 backed by {cache}",
        )
        return target

    def delete(self, install_path: str | Path) -> bool:
        """Remove a volume file (and its directory once empty). A missing file is
        success (returns False); a file a running VM holds is refused."""
        target = self.resolve(install_path)
        if not target.exists():
            return False
        if target.is_dir():
            raise StorageError(f"{target} is a directory: delete removes volume files only")
        self._refuse_in_use(target, "delete")
        try:
            target.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {target}: {exc.strerror}") from None
        if str(target.parent) != self.real_root:
            try:
                target.parent.rmdir()
            except OSError:
                pass  # not empty: other volumes or snapshots live there
        return True

    def resize(self, install_path: str | Path, size: int) -> int:
        """Grow a volume not in use; returns its new virtual size (shrinking is refused)."""
        target = self._existing(install_path)
        self._refuse_in_use(target, "resize")
        return qemu_img.resize(target, size)

    def info(self, install_path: str | Path) -> ImageInfo:
        """A volume's facts and backing chain; every file of the chain must be inside
        the root (a backing file elsewhere is refused, not followed)."""
        return self._image(self._existing(install_path))

    def chain(self, install_path: str | Path) -> list[Path]:
        """The volume's file and its backing files, top first: what a copy of the volume
        to another host must carry (snapshots and image cache included)."""
        return [Path(layer.filename) for layer in self.info(install_path).chain]

    # -- offline snapshots -------------------------------------------------------------

    def take_snapshot(self, volume_path: str | Path, new_volume_path: str | Path
                      ) -> SnapshotResult:
        """External snapshot of a volume no VM is running on.

        As in ZStack (and as libvirt's disk-only snapshot of a running VM does), the
        current file stays where it is and becomes the snapshot; a new qcow2 overlay on it,
        at ``new_volume_path``, becomes the volume. Repeating a finished call is success.
        """
        volume = self._existing(volume_path)
        new = self.resolve(new_volume_path)
        if new == volume:
            raise StorageError(f"the new volume path must differ from the volume's: {new}")
        self._refuse_in_use(volume, "snapshot")
        fmt = self._image(volume).format
        self._create(
            new, lambda tmp: qemu_img.create_with_backing(tmp, volume, fmt),
            lambda i: i.format == "qcow2" and i.backing_file == str(volume),
            f"an overlay on {volume}",
        )
        return SnapshotResult(volume_path=new, snapshot_path=volume)

    def merge_snapshot(self, volume_path: str | Path, base_path: str | Path | None = None
                       ) -> ImageInfo:
        """Pull the data of the snapshots between ``base_path`` and the volume into the
        volume, so ``base_path`` becomes its backing file and the snapshots in between are
        no longer needed (ZStack's offline merge). Without ``base_path`` the volume becomes
        standalone (a full rebase). The guest's data is unchanged either way."""
        volume = self._existing(volume_path)
        self._refuse_in_use(volume, "merge snapshots into")
        top = self._image(volume)
        if base_path is None:
            if top.backing is not None:
                tmp = _tmp_name(volume)
                try:
                    qemu_img.convert(volume, tmp, "qcow2")
                    os.rename(tmp, volume)
                finally:
                    tmp.unlink(missing_ok=True)
        else:
            base = self.resolve(base_path)
            below = {os.path.realpath(layer.filename): layer for layer in top.chain[1:]}
            if str(base) not in below:
                raise StorageError(f"{base} is not in the backing chain of {volume}: "
                                   f"{', '.join(below) or 'it has no backing file'}")
            if os.path.realpath(top.backing.filename) != str(base):
                qemu_img.rebase(volume, base, below[str(base)].format)
        return self._image(volume)

    # -- helpers -----------------------------------------------------------------------

    def _existing(self, install_path: str | Path, what: str = "volume") -> Path:
        path = self.resolve(install_path)
        if not path.is_file():
            raise StorageError(f"{what} {path} not found")
        return path

    def _image(self, path: Path) -> ImageInfo:
        image = qemu_img.info(path)
        for layer in image.chain[1:]:
            if not self.contains(layer.filename):
                raise StorageError(f"{path} has backing file {layer.filename} outside the "
                                   f"{self.kind} root {self.root}; refusing to use it")
        return image

    def _refuse_in_use(self, path: Path, action: str) -> None:
        if qemu_img.in_use(path):
            raise StorageError(f"cannot {action} {path}: it is in use (a running VM or other "
                               "process holds its write lock)")

    def _create(self, target: Path, build: Callable[[Path], None],
                same: Callable[[ImageInfo], bool], what: str) -> None:
        """Build ``target`` under a temporary name and rename it into place. An existing
        ``target`` that is already ``what`` is success; anything else there is refused."""
        if os.path.lexists(target):
            existing = qemu_img.info(target)
            if same(existing):
                return
            raise StorageError(f"{target} already exists and is not {what}: it is "
                               f"{_describe(existing)}")
        tmp = _tmp_name(target)
        with self.new_parents(target.parent):
            try:
                build(tmp)
                os.rename(tmp, target)
            except BaseException as exc:
                tmp.unlink(missing_ok=True)
                if isinstance(exc, OSError):
                    raise StorageError(f"cannot create {target}: {exc}") from None
                raise

    @contextmanager
    def new_parents(self, directory: Path) -> Iterator[None]:
        """Create the directories missing down to ``directory`` for the body (libvirt and
        qemu-img do not), and remove them again if the body fails: a failed operation
        leaves nothing behind."""
        made = self._make_parents(directory)
        try:
            yield
        except BaseException:
            _remove_dirs(made)
            raise

    def _make_parents(self, directory: Path) -> list[Path]:
        """Create the missing directories down to ``directory`` (never the root itself:
        a missing shared mount point must not turn into a local directory)."""
        root = Path(self.real_root)
        if not root.is_dir():
            hint = " (is the shared filesystem mounted?)" if self.shared else ""
            raise StorageError(f"{self.kind} root {self.root} is missing{hint}")
        missing = []
        while directory != root and not directory.exists():
            missing.append(directory)
            directory = directory.parent
        made: list[Path] = []
        try:
            for d in reversed(missing):
                d.mkdir(mode=0o755)
                made.append(d)
        except OSError as exc:
            _remove_dirs(made)
            raise StorageError(f"cannot create directory {exc.filename}: {exc.strerror}") from None
        return made


def _tmp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")


def _remove_dirs(made: list[Path]) -> None:
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            pass  # something else was put there meanwhile: keep it


def _describe(image: ImageInfo) -> str:
    backing = f", backed by {image.backing_file}" if image.backing_file else ""
    return f"{image.format}, {image.virtual_size} bytes{backing}"
