"""A storage root directory, as agents that keep files under one see it: where a path
really points (symlinks and ``..`` resolved) and whether that is inside, the root's
capacity, and a write probe. Each agent wraps the OSErrors and ValueErrors here in its
own error with its own words."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def resolve_inside(root: Path, install_path: str | Path, what: str = "storage") -> Path:
    """The real path of ``install_path``; ValueError unless it is absolute and lies
    strictly inside ``root`` after ``..`` and every symlink are resolved."""
    given = str(install_path)
    if not os.path.isabs(given):
        raise ValueError(f"{given!r} is not an absolute path")
    real = os.path.realpath(given)
    if not real.startswith(os.path.realpath(root).rstrip("/") + "/"):
        via = "" if real == os.path.normpath(given) else f" (it resolves to {real})"
        raise ValueError(f"{given} is outside the {what} root {root}{via}")
    return Path(real)


def capacity(root: Path) -> tuple[int, int]:
    """(total, available) bytes of the filesystem holding ``root``; OSError if unreadable."""
    st = os.statvfs(root)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def probe_writable(root: Path) -> None:
    """Write, sync and remove a small file in ``root``; OSError if that fails."""
    fd, probe = tempfile.mkstemp(dir=root, prefix=".zfleet-write-test-")
    try:
        os.write(fd, b"zfleet")
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(probe)
