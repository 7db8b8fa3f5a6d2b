"""Which file storages this host serves: local storage roots (from ``/localstorage/init``)
and shared mount points (from ``/sharedmountpointprimarystorage/connect``).

Kept in the data dir, so a restarted agent still serves them, and still refuses any
volume path outside all of them, before the coordinator reconnects it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from agentlib import jsonfile
from kvmagent.drivers.filestorage import FileStorage, OutsideRoot, StorageError

_KEY = {False: "localStorage", True: "sharedMountPoint"}
_HOW = {False: "/localstorage/init", True: "/sharedmountpointprimarystorage/connect"}


class StorageRoots:
    def __init__(self, state_file: Path):
        self._file = Path(state_file)
        self._lock = threading.Lock()
        state = jsonfile.read(self._file, {})
        self._roots = {shared: list(state.get(key, [])) for shared, key in _KEY.items()}

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
