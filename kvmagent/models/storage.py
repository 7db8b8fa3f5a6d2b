"""kvmagent file-volume storage models: local storage and shared mount point storage
(ZStack's field names; paths are absolute, sizes in bytes)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, StrictInt

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import AbsPath

VolumeSize = Annotated[StrictInt, Field(gt=0, lt=1 << 63)]
"""Bytes; a Java long, and more than nothing."""


class CapacityReply(AgentReply):
    """Replies of commands that may change what the storage holds."""

    total_capacity: int | None = None
    available_capacity: int | None = None


# -- local storage -------------------------------------------------------------------


class LocalStorageInitCmd(AgentCommand):
    path: AbsPath


class GetPhysicalCapacityCmd(AgentCommand):
    storage_path: AbsPath | None = None
    """Which local storage; may be left out while the host has only one."""


class CreateEmptyVolumeCmd(AgentCommand):
    install_url: AbsPath = Field(validation_alias=AliasChoices("installUrl", "installPath"))
    size: VolumeSize


class CreateVolumeFromCacheCmd(AgentCommand):
    template_path_in_cache: AbsPath
    install_url: AbsPath = Field(validation_alias=AliasChoices("installUrl", "installPath"))


class DeleteBitsCmd(AgentCommand):
    path: AbsPath


class ResizeVolumeCmd(AgentCommand):
    install_path: AbsPath
    size: VolumeSize


class ResizeVolumeReply(AgentReply):
    size: int | None = None
    """The virtual size now (the request rounded up to a whole 512-byte sector)."""


# -- shared mount point storage --------------------------------------------------------


class MountPointCmd(AgentCommand):
    """``connect`` and ``getcapacity``: the shared filesystem's mount point."""

    mount_point: AbsPath


class SmpCmd(AgentCommand):
    mount_point: AbsPath | None = None
    """Which shared mount point; found from the volume path when left out."""


class SmpCreateRootVolumeCmd(SmpCmd):
    template_path_in_cache: AbsPath
    install_path: AbsPath


class SmpCreateEmptyVolumeCmd(SmpCmd):
    install_path: AbsPath
    size: VolumeSize


class SmpDeleteBitsCmd(SmpCmd):
    path: AbsPath
