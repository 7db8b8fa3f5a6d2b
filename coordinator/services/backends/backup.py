"""What the flows need of a backup storage, whatever its type: its agent, downloading an
image into it, deleting an image's copy."""

from __future__ import annotations

from typing import Protocol

from coordinator.clients.endpoint import Call
from coordinator.clients.transport import Client
from coordinator.context import Context
from coordinator.jobs import Deadline


class Downloaded(Protocol):
    """What a storage agent's download reply says of the image."""

    size: int
    actual_size: int
    md5_sum: str
    format: str


class BackupStorage:
    type = ""

    def __init__(self, row: dict):
        self.row = row

    def agent(self, ctx: Context) -> Client:
        """The client of the storage's agent (its errors are :class:`ApiError` naming the
        storage, :class:`StorageUnreachable` if none answers)."""
        raise NotImplementedError

    def call(self, ctx: Context, path: str, body: dict) -> dict:
        """A command built earlier (a GC job's path and body) for the storage's agent."""
        return self.agent(ctx).run(Call(path, body))

    def image_path(self, image_uuid: str) -> str:
        """Where an image is downloaded to."""
        raise NotImplementedError

    def download(self, ctx: Context, image_uuid: str, url: str,
                 deadline: Deadline) -> tuple[str, Downloaded]:
        """Download ``url`` as the image; (its path, the agent's reply)."""
        raise NotImplementedError

    def delete_command(self, install_path: str) -> Call:
        """The command that deletes an image's copy (sent now or kept as a GC job)."""
        raise NotImplementedError
