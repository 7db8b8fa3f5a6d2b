"""Which file storages this host serves: local storage roots (from ``/localstorage/init``)
and shared mount points (from ``/sharedmountpointprimarystorage/connect``).

Kept in the data dir, so a restarted agent still serves them, and still refuses any
volume path outside all of them, before the coordinator reconnects it. A kept root that
is a system directory or holds the data dir (recorded by an older agent that did not
check) is dropped on reading, so it is never served again.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from agentlib import jsonfile, storageroot
from kvmagent.drivers.filestorage import FileStorage, OutsideRoot, StorageError

_KEY = {False: "localStorage", True: "sharedMountPoint"}
_HOW = {False: "/localstorage/init", True: "/sharedmountpointprimarystorage/connect"}

log = logging.getLogger(__name__)


class StorageRoots:
    def __init__(self, state_file: Path):
        self._file = Path(state_file)
        self._lock = threading.Lock()
        state = jsonfile.read(self._file, {})
        self._roots = {shared: [r for r in state.get(key, []) if self._safe(r)]
                       for shared, key in _KEY.items()}

    def _safe(self, root: str) -> bool:
        try:
            storageroot.refuse_system(root, self._file.parent)
        except ValueError as exc:
            log.warning("no longer serving the storage root %s kept in %s: %s", root,
                        self._file, exc)
            return False
        return True

    def add(self, storage: FileStorage) -> None:
        """Remember ``storage`` (after its ``init()`` succeeded)."""
        with self._lock:
            roots = self._roots[storage.shared]
            if str(storage.root) not in roots:
                roots.append(str(storage.root))
                jsonfile.write(self._file, {_KEY[s]: r for s, r in self._roots.items()})

    def storages(self, shared: bool | None = None) -> list[FileStorage]:
        """Every storage of one kind (``shared``), or of both kinds (None)."""
        kinds = (False, True) if shared is None else (shared,)
        with self._lock:
            return [FileStorage(root, shared=s) for s in kinds for root in self._roots[s]]

    def get(self, root: str | Path, *, shared: bool) -> FileStorage:
        """The storage whose root is ``root``; refused unless it was set up on this host."""
        wanted = os.path.normpath(root)
        for storage in self.storages(shared):
            if str(storage.root) == wanted:
                return storage
        kind = FileStorage(wanted, shared=shared).kind
        raise StorageError(f"{wanted} is not a {kind} of this host: {_HOW[shared]} it first")

    def find(self, install_path: str | Path, *, shared: bool | None = None) -> FileStorage:
        """The storage ``install_path`` lies in (the innermost root, should roots nest)."""
        candidates = self.storages(shared)
        if not candidates:
            how = " or ".join(_HOW[s] for s in ((False, True) if shared is None else (shared,)))
            raise StorageError(f"no file storage is set up on this host yet: {how} first")
        inside = [s for s in candidates if s.contains(install_path)]
        if not inside:
            roots = ", ".join(f"{s.kind} {s.root}" for s in candidates)
            raise OutsideRoot(f"{install_path} is outside every storage root of this host "
                              f"({roots})")
        return max(inside, key=lambda s: len(s.real_root))

    def find_readable(self, path: str | Path, image_roots: list[Path]) -> Path:
        """The real path of a file a VM only reads (ISO, kernel, initrd): inside one of
        the operator's ``image_roots`` or a storage root of this host."""
        for root in image_roots:
            try:
                return storageroot.resolve_inside(root, path, "image")
            except ValueError:
                continue
        try:
            storage = self.find(path)
        except StorageError as exc:
            where = ", ".join(map(str, image_roots))
            raise OutsideRoot(f"{exc}{f' or image root ({where})' if where else ''}") from None
        return storage.resolve(path)
