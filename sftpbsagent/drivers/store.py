"""The backup storage: image files under one root directory.

Every path a command names is resolved (symlinks included) and must lie strictly inside
the root, so a hostile path never touches anything else on the host. Images are
written under a temporary name next to their final path and renamed into place
read-only, so an image at its install path is always complete.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from agentlib import storageroot
from agentlib.errors import AgentError

TMP_SUFFIX = ".download"
"""Temporary files of downloads in flight; never reported as garbage while the agent
runs them (see :meth:`ImageStore.garbage`)."""


class StoreError(AgentError):
    """A backup storage operation failed; the message names the path."""


class ImageStore:
    def __init__(self, root: str | Path):
        self.root = Path(os.path.normpath(root))

    @property
    def real_root(self) -> str:
        return os.path.realpath(self.root)

    def init(self) -> tuple[int, int]:
        """Create the root if missing and prove it writable; returns :meth:`capacity`."""
        if self.real_root == "/":
            raise StoreError(f"refusing {self.root} as the storage root: it is /")
        try:
            self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
            storageroot.probe_writable(self.root)
        except OSError as exc:
            raise StoreError(f"storage root {self.root} is not usable: {exc}") from None
        return self.capacity()

    def capacity(self) -> tuple[int, int]:
        """(total, available) bytes of the filesystem holding the root."""
        try:
            return storageroot.capacity(self.root)
        except OSError as exc:
            raise StoreError(f"cannot read the capacity of {self.root}: {exc.strerror}"
                             ) from None

    def resolve(self, install_path: str | Path) -> Path:
        """The real path of ``install_path``, refused unless strictly inside the root."""
        try:
            return storageroot.resolve_inside(self.root, install_path)
        except ValueError as exc:
            raise StoreError(str(exc)) from None

    def image(self, install_path: str | Path) -> Path:
        path = self.resolve(install_path)
        if not path.is_file():
            raise StoreError(f"image {path} not found")
        return path

    def delete(self, install_path: str | Path) -> bool:
        """Remove an image (and its directory once empty); a missing one is success."""
        path = self.resolve(install_path)
        if not os.path.lexists(path):
            return False
        if path.is_dir():
            raise StoreError(f"{path} is a directory: delete removes image files only")
        try:
            path.unlink()
        except OSError as exc:
            raise StoreError(f"cannot delete {path}: {exc.strerror}") from None
        self.prune(path.parent)
        return True

    def prune(self, directory: Path) -> None:
        """Remove ``directory`` and its parents up to the root while they are empty."""
        root = Path(self.real_root)
        while directory != root and directory.is_relative_to(root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def make_parents(self, directory: Path) -> list[Path]:
        """Create the missing directories down to ``directory``; returns those made."""
        root = Path(self.real_root)
        if not root.is_dir():
            raise StoreError(f"storage root {self.root} is missing")
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
            for d in reversed(made):
                d.rmdir()
            raise StoreError(f"cannot create directory {exc.filename}: {exc.strerror}"
                             ) from None
        return made

    def md5(self, install_path: str | Path) -> str:
        with open(self.image(install_path), "rb") as f:
            return hashlib.file_digest(f, "md5").hexdigest()

    def garbage(self, owned: Iterable[str | Path], busy: Iterable[Path] = ()) -> list[Path]:
        """Files under the root that no path in ``owned`` names (symlinks included, never
        followed), except the temporary files in ``busy`` (downloads in flight)."""
        keep = {os.path.realpath(p) for p in owned} | {str(p) for p in busy}
        found = []
        for dirpath, _dirs, files in os.walk(self.real_root):
            for name in files:
                path = os.path.join(dirpath, name)
                if path not in keep:
                    found.append(Path(path))
        return sorted(found)
