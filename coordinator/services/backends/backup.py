"""What the flows need of a backup storage, whatever its type: its agent, downloading an
image into it, deleting an image's copy."""

from __future__ import annotations

from coordinator.context import Context
from coordinator.jobs import Deadline


class BackupStorage:
    type = ""
    download_path = ""
    """The agent's command that downloads a URL as an image."""
    delete_path = ""
    """The agent's command that deletes an image's copy."""

    def __init__(self, row: dict):
        self.row = row

    def call(self, ctx: Context, path: str, body: dict,
             deadline: Deadline | None = None) -> dict:
        """A command for the storage's agent (:class:`StorageUnreachable` if none
        answers)."""
        raise NotImplementedError

    def image_path(self, image_uuid: str) -> str:
        """Where an image is downloaded to."""
        raise NotImplementedError

    def download(self, ctx: Context, image_uuid: str, url: str,
                 deadline: Deadline) -> tuple[str, dict]:
        """Download ``url`` as the image; (its path, the agent's reply)."""
        path = self.image_path(image_uuid)
        return path, self.call(ctx, self.download_path, {
            "url": url, "imageUuid": image_uuid, "installPath": path}, deadline)

    def delete_command(self, install_path: str) -> tuple[str, dict]:
        """(path, body) of the command that deletes an image's copy."""
        return self.delete_path, {"installPath": install_path}
