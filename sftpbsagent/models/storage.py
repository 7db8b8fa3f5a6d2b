"""sftpbsagent command and reply models (ZStack's SFTP backup storage field names;
install paths are absolute paths under the storage root, sizes in bytes)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, AliasChoices, Field, StrictBool, StringConstraints

from agentlib.callbackurl import CallbackUrl
from agentlib.models import AgentCommand, AgentReply
from agentlib.types import AbsPath, SafeName, Uuid

SCHEMES = ("http", "https", "file", "sftp")


def _url(v: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError("must not contain control characters (newline, tab, NUL...)")
    scheme = v.split(":", 1)[0].lower() if ":" in v else ""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme {scheme!r} is not supported (only {', '.join(SCHEMES)})")
    return v


Url = Annotated[str, StringConstraints(min_length=1, max_length=4096), AfterValidator(_url)]
"""Scheme and characters here (a 400); host, path and file roots when the download runs."""


class CapacityReply(AgentReply):
    total_capacity: int | None = None
    available_capacity: int | None = None


class ConnectCmd(AgentCommand):
    """Serve images under ``storagePath`` (created if missing, must be writable)."""

    storage_path: AbsPath
    uuid: Uuid | None = None
    send_command_url: CallbackUrl | None = None


class PingReply(CapacityReply):
    uuid: str | None = None
    storage_path: str | None = None


class DownloadCmd(AgentCommand):
    url: Url
    install_path: AbsPath
    image_uuid: SafeName | None = None
    """Names the download in progress reports and queries (default: the install path)."""


class ImageReply(CapacityReply):
    md5_sum: str = ""
    actual_size: int = 0
    """Bytes the file holds."""
    size: int = 0
    """Virtual size: what a VM sees (qemu-img)."""
    format: str = ""


class ProgressCmd(AgentCommand):
    image_uuid: SafeName


class DeleteCmd(AgentCommand):
    install_url: AbsPath = Field(validation_alias=AliasChoices("installUrl", "installPath"))


class GetImageSizeCmd(AgentCommand):
    install_path: AbsPath
    image_uuid: SafeName | None = None


class SizeReply(AgentReply):
    size: int = 0
    actual_size: int = 0


class GetHashCmd(AgentCommand):
    path: AbsPath = Field(validation_alias=AliasChoices("path", "installPath"))


class HashReply(AgentReply):
    hash: str = ""
    """md5, as ZStack's download reply gives it."""


class SshKeyReply(AgentReply):
    ssh_key: str = ""
    """The agent's ssh public key (one OpenSSH line)."""



class GarbageCmd(AgentCommand):
    """Files under the root that none of ``installPaths`` (every image the coordinator
    knows on this storage) owns; ``remove`` deletes them."""

    install_paths: list[AbsPath] = Field(default_factory=list, max_length=1_000_000)
    remove: StrictBool = False


class GarbageReply(CapacityReply):
    garbage: list[str] = []
    removed: list[str] = []
