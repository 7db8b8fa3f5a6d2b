"""Images to and from an SFTP backup storage: ``/localstorage/sftp/download`` (pull into
the image cache) and ``/localstorage/sftp/upload`` (push a volume as a new image).

Both log in to the backup storage with the agent's own ssh key (the one
``/localstorage/sshkey`` returns: the coordinator authorizes it there). Both hold the
lock ``volume:<path>`` on the host's file: concurrent pulls of one image wait for the
first and then reuse its copy, so it is downloaded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agentlib.agent import Agent
from agentlib.config import AgentConfig
from agentlib.errors import AgentError
from agentlib.locks import NamedLocks
from agentlib.progress import ProgressBoard
from agentlib.routes import Routes
from agentlib.ssh import Remote, SshIdentity
from agentlib.tasks import Task
from kvmagent.drivers import sftp_image
from kvmagent.drivers.filestorage import FileStorage, StorageError
from kvmagent.drivers.storage_roots import StorageRoots
from kvmagent.handlers.localstorage import STATE_FILE
from kvmagent.models.sftp_image import SftpDownloadCmd, SftpImageReply, SftpUploadCmd

routes = Routes()


@dataclass
class SftpImages:
    """What the handlers work on: the agent's ssh key, the storage handlers' state file
    (the roots), and the agent's progress board and locks."""

    identity: SshIdentity
    roots_file: Path
    board: ProgressBoard
    locks: NamedLocks

    def locate(self, field: str, path: str) -> tuple[FileStorage, Path]:
        roots = StorageRoots(self.roots_file)  # re-read: init may be newer
        try:
            storage = roots.find(path)
            return storage, storage.resolve(path)
        except StorageError as exc:
            raise AgentError(f"{field}: {exc}") from None


def register(agent: Agent, config: AgentConfig) -> None:
    agent.include(routes, SftpImages(
        SshIdentity(Path(config.data_dir) / "ssh", "zfleet-kvmagent"),
        Path(config.data_dir) / STATE_FILE, ProgressBoard(agent.reporter), agent.locks))


def _reply(t: sftp_image.Transferred) -> SftpImageReply:
    return SftpImageReply(md5_sum=t.md5, actual_size=t.actual_size, size=t.virtual_size,
                          format=t.format, reused=t.reused)


@routes.async_("/localstorage/sftp/download", long=True)
def download(images: SftpImages, cmd: SftpDownloadCmd, task: Task) -> SftpImageReply:
    """Pull an image from the backup storage into the image cache over ssh, verified
    (md5, size, qemu-img) and read-only; an image already cached is reused."""
    storage, target = images.locate("primaryStorageInstallPath",
                                    cmd.primary_storage_install_path)
    remote = Remote(images.identity, cmd.hostname, cmd.ssh_port, cmd.username)
    with images.locks.hold(f"volume:{target}"):
        progress = images.board.start(cmd.image_uuid or str(target), cmd.actual_size,
                                      task_uuid=task.uuid)
        return _reply(sftp_image.pull(remote, cmd.backup_storage_install_path, storage,
                                      target, progress, task.check_cancelled,
                                      cmd.md5_sum, cmd.actual_size))


@routes.async_("/localstorage/sftp/upload", long=True)
def upload(images: SftpImages, cmd: SftpUploadCmd, task: Task) -> SftpImageReply:
    """Push a volume no VM is running on (flattened if it has a backing chain) to
    the backup storage as a new image, verified by md5 on both sides."""
    storage, volume = images.locate("primaryStorageInstallPath",
                                    cmd.primary_storage_install_path)
    if not volume.is_file():
        raise AgentError(f"primaryStorageInstallPath: volume {volume} not found")
    remote = Remote(images.identity, cmd.hostname, cmd.ssh_port, cmd.username)
    with images.locks.hold(f"volume:{volume}"):
        return _reply(sftp_image.push(remote, storage, volume,
                                      cmd.backup_storage_install_path,
                                      task.check_cancelled))
