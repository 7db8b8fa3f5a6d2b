"""kvmagent local storage volume migration models (``/localstorage/volume/migrate``) and
the agent's ssh key (``/localstorage/sshkey``)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import AbsPath, IPv4, Uuid

UserName = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
"""A POSIX login name: it goes into ``user@host`` on ssh's command line."""
VolumeType = Annotated[Literal["root", "data"],
                       BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)]
"""ZStack says ``Root``/``Data``."""


class MigrateVolumeCmd(AgentCommand):
    """Copy local volumes with their backing chains to ``dstHostIp`` over ssh.

    One volume (``srcInstallPath``) or several (``paths``, as ZStack sends them; backing
    files they share are copied once). Each file goes to the same path relative to
    ``dstStorageRoot`` (default: the source's own local storage root, ZStack's layout:
    the same root on every host); ``dstInstallPath`` moves a single volume's own file
    elsewhere under that root. With ``vmUuid`` and ``volumeType`` ZStack's rules are
    enforced by name: root only while the VM is stopped, data only while detached.
    """

    src_install_path: AbsPath | None = None
    paths: list[AbsPath] | None = Field(None, min_length=1, max_length=64)
    dst_host_ip: IPv4 = Field(validation_alias=AliasChoices("dstHostIp", "dstIp"))
    dst_storage_root: AbsPath | None = None
    dst_install_path: AbsPath | None = None
    dst_username: UserName = "root"
    dst_ssh_port: int = Field(22, ge=1, le=65535,
                              validation_alias=AliasChoices("dstSshPort", "dstPort"))
    vm_uuid: Uuid | None = None
    volume_type: VolumeType | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MigrateVolumeCmd:
        if (self.src_install_path is None) == (self.paths is None):
            raise ValueError("give either srcInstallPath or paths")
        if self.dst_install_path is not None:
            if self.paths is not None and len(self.paths) > 1:
                raise ValueError("dstInstallPath: only with a single volume")
            if self.dst_storage_root is None:
                raise ValueError("dstInstallPath: needs dstStorageRoot")
            path = PurePosixPath(self.dst_install_path)
            if path == PurePosixPath(self.dst_storage_root) or not path.is_relative_to(
                    self.dst_storage_root):
                raise ValueError(f"dstInstallPath: {path} is not inside dstStorageRoot "
                                 f"{self.dst_storage_root}")
        if self.volume_type == "root" and self.vm_uuid is None:
            raise ValueError("volumeType root: needs vmUuid (the VM that must be stopped)")
        return self

    @property
    def volumes(self) -> list[str]:
        return [self.src_install_path] if self.src_install_path else list(self.paths)


class MigratedFile(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    src_path: str
    dst_path: str
    size: int
    sha256: str
    seconds: float
    reused: bool
    """Already on the destination with the same bytes (a shared base): not copied."""


class MigrateVolumeReply(AgentReply):
    dst_install_paths: list[str] = []
    """Per volume, in the command's order: where its own file is now on the destination."""
    files: list[MigratedFile] = []
    """Every file of the chains, base first."""


class SshKeyReply(AgentReply):
    public_key: str = ""
    """The agent's ssh public key (one OpenSSH line), to authorize on other hosts."""
