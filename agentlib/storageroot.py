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


SYSTEM_TREES = ("/etc", "/root", "/usr", "/bin", "/sbin", "/boot", "/dev", "/proc", "/sys",
                "/run")
"""Never a storage root, nor anything inside them: the host's configuration, keys,
programs and kernel interfaces."""
SYSTEM_DIRS = ("/", "/var/lib")
"""Never a storage root themselves (a directory inside them may be one)."""


def refuse_system(path: str | Path, data_dir: Path) -> None:
    """ValueError unless ``path`` (after symlinks) may hold storage: not a system
    directory, and neither inside nor around the agent's data dir (its identity, ssh key
    and state)."""
    real = os.path.realpath(path)
    via = "" if real == os.path.normpath(path) else f" (it resolves to {real})"
    exact = {os.path.realpath(d) for d in SYSTEM_DIRS}
    trees = {os.path.realpath(d) for d in SYSTEM_TREES}
    if real in exact or any(_within(real, t) for t in trees):
        raise ValueError(f"{path} is a system directory{via}: never a storage root")
    own = os.path.realpath(data_dir)
    if _within(real, own) or _within(own, real):
        raise ValueError(f"{path} holds or is inside the agent's data dir {data_dir}{via}: "
                         "never a storage root")


def check_roots(roots: list[Path], data_dir: Path) -> None:
    """At startup: ValueError naming the first configured root that may not hold storage."""
    for root in roots:
        if not os.path.isabs(root):
            raise ValueError(f"{root} is not an absolute path")
        refuse_system(root, data_dir)


def allowed_root(path: str | Path, roots: list[Path], data_dir: Path) -> Path:
    """The real path of ``path``, a storage root a command asks for; ValueError unless it
    equals or lies inside one of the operator's ``roots`` (symlinks resolved on both
    sides) and is no system directory."""
    refuse_system(path, data_dir)
    real = os.path.realpath(path)
    if not any(_within(real, os.path.realpath(r)) for r in roots):
        allowed = ", ".join(str(r) for r in roots) or "none"
        via = "" if real == os.path.normpath(path) else f" (it resolves to {real})"
        raise ValueError(f"{path} is not inside a configured storage root{via} "
                         f"(storage_roots: {allowed})")
    return Path(real)


def _within(path: str, root: str) -> bool:
    """``path`` equals ``root`` or lies inside it (both real paths)."""
    return path == root or path.startswith(root.rstrip("/") + "/")
