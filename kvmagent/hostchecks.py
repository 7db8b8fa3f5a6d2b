"""Checks of what a command names on this host (bridges, files) that a model cannot make.

Shared by VM start and hot-plug so both refuse a missing bridge or file, or a file
outside this host's storage, with the same error, naming the command field, before
libvirt is asked (whose own error would name neither the field nor the host).
"""

from __future__ import annotations

import os
from pathlib import Path

from agentlib.errors import AgentError, BadRequest
from kvmagent.drivers.filestorage import StorageError
from kvmagent.drivers.storage_roots import StorageRoots


def require_bridge(field: str, bridge: str) -> None:
    if not os.path.isdir(f"/sys/class/net/{bridge}/bridge"):
        raise AgentError(f"{field}: no bridge {bridge!r} on this host")


def require_file(field: str, path: str) -> None:
    if not os.path.isfile(path):
        raise AgentError(f"{field}: no such file on this host: {path}")


class VmFiles:
    """Where the files a VM opens may lie: a volume inside a storage root set up on this
    host (``/localstorage/init``, ``.../connect``), an ISO, kernel or initrd there or in
    ``--image-roots``; else a command could hand the guest ``/etc/shadow`` as a disk.
    Each check raises :class:`BadRequest` naming the field (an HTTP 400)."""

    def __init__(self, roots_file: Path, image_roots: list[Path]):
        self._roots_file = roots_file
        self._image_roots = image_roots

    def volume(self, field: str, path: str) -> None:
        try:  # re-read: a root set up since is served at once
            StorageRoots(self._roots_file).find(path).resolve(path)
        except StorageError as exc:
            raise BadRequest(f"{field}: {exc}") from None

    def readable(self, field: str, path: str) -> None:
        try:
            StorageRoots(self._roots_file).find_readable(path, self._image_roots)
        except StorageError as exc:
            raise BadRequest(f"{field}: {exc}") from None
