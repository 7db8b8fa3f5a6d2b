"""kvmagent image transfer with an SFTP backup storage (ZStack's
``/localstorage/sftp/download`` and ``/localstorage/sftp/upload`` field names)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, StrictInt

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import AbsPath, SafeName
from kvmagent.models.volume_migrate import UserName

HostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")]
"""An IPv4 address or DNS name (it goes into ``user@host`` on ssh's command line)."""
Md5 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]


class BackupStorageHost(AgentCommand):
    """Where the backup storage's sshd is; the host logs in with its own key
    (``/localstorage/sshkey``), which the backup storage's user must authorize."""

    hostname: HostName = Field(validation_alias=AliasChoices("hostname", "backupStorageHostname"))
    username: UserName = "root"
    ssh_port: int = Field(22, ge=1, le=65535)


class SftpDownloadCmd(BackupStorageHost):
    """Pull ``backupStorageInstallPath`` into the host's image cache at
    ``primaryStorageInstallPath`` (inside a storage root of this host); with ``md5Sum``
    and/or ``actualSize`` the copy is verified against them (the md5 only when given:
    hashing costs as much CPU as the ssh transfer)."""

    backup_storage_install_path: AbsPath
    primary_storage_install_path: AbsPath
    image_uuid: SafeName | None = None
    md5_sum: Md5 | None = None
    actual_size: Annotated[StrictInt, Field(ge=0)] | None = None


class SftpUploadCmd(BackupStorageHost):
    """Push the volume ``primaryStorageInstallPath`` (flattened if it has a backing
    chain) to ``backupStorageInstallPath`` as a new image."""

    primary_storage_install_path: AbsPath
    backup_storage_install_path: AbsPath


class SftpImageReply(AgentReply):
    md5_sum: str = ""
    actual_size: int = 0
    size: int = 0
    """Virtual size."""
    format: str = ""
    reused: bool = False
    """download: the image was already in the cache (not copied again)."""
