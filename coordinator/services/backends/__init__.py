"""Storage backends: one class per primary storage type and per backup storage type, with
what the flows need of them. The flows ask :func:`primary` / :func:`backup` for a row's
backend and never branch on a storage's type themselves; a new type is a new class
here (:class:`SharedMountPoint` is the first one waiting to be filled)."""

from __future__ import annotations

from coordinator.api import ApiError
from coordinator.services.backends.backup import BackupStorage
from coordinator.services.backends.ceph import CephBackup, CephPrimary
from coordinator.services.backends.local import LocalStorage
from coordinator.services.backends.primary import PrimaryStorage, SharedMountPoint
from coordinator.services.backends.sftp import SftpBackup

PRIMARY: dict[str, type[PrimaryStorage]] = {
    c.type: c for c in (CephPrimary, LocalStorage, SharedMountPoint)}
BACKUP: dict[str, type[BackupStorage]] = {c.type: c for c in (CephBackup, SftpBackup)}


def primary(ps: dict) -> PrimaryStorage:
    """The backend of a primary storage row."""
    cls = PRIMARY.get(ps["type"])
    if cls is None:
        raise ApiError(f"primary storage {ps['name']}: unknown type {ps['type']}")
    return cls(ps)


def backup(bs: dict) -> BackupStorage:
    """The backend of a backup storage row."""
    cls = BACKUP.get(bs["type"])
    if cls is None:
        raise ApiError(f"backup storage {bs['name']}: unknown type {bs['type']}")
    return cls(bs)


def shared_types() -> list[str]:
    """The primary storage types whose volumes every host of a cluster can use."""
    return [t for t, cls in PRIMARY.items() if cls.shared]
