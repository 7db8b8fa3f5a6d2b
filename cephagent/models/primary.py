"""``/ceph/primarystorage/*`` commands and replies."""

from __future__ import annotations

from pydantic import Field, StrictBool, StrictInt, model_validator

from agentlib.models import AgentCommand
from cephagent.models.common import (
    CephReply,
    ImageOrSnapshotPath,
    ImagePath,
    MonTO,
    PoolName,
    SnapshotPath,
    StorageCmd,
)

POOL_ROLES = {  # field -> prefix of the pool created when the command names none
    "image_cache_pool_name": "pri-c",
    "root_volume_pool_name": "pri-v-r",
    "data_volume_pool_name": "pri-v-d",
}


class PrimaryInitCmd(StorageCmd):
    """A named pool must exist (it was made by the operator); an unnamed one is created
    as ``pri-c-<uuid>`` / ``pri-v-r-<uuid>`` / ``pri-v-d-<uuid>``."""

    image_cache_pool_name: PoolName | None = None
    root_volume_pool_name: PoolName | None = None
    data_volume_pool_name: PoolName | None = None

    @model_validator(mode="after")
    def _uuid_names_the_defaults(self) -> PrimaryInitCmd:
        if self.uuid is None and any(getattr(self, f) is None for f in POOL_ROLES):
            raise ValueError("uuid is required when a pool name is not given "
                             "(the pool created is named after it)")
        return self

    def pool_names(self) -> dict[str, str]:
        """field -> pool name, the default for each pool not named."""
        return {f: getattr(self, f) or f"{prefix}-{self.uuid}"
                for f, prefix in POOL_ROLES.items()}


class PrimaryInitReply(CephReply):
    image_cache_pool_name: str = ""
    root_volume_pool_name: str = ""
    data_volume_pool_name: str = ""
    created_pools: list[str] = []
    mons: list[MonTO] = []
    user_key: str = Field("", repr=False)  # the cephx key hosts put in libvirt secrets


class FactsReply(CephReply):
    ceph_version: str = ""
    mons: list[MonTO] = []


class AddPoolCmd(AgentCommand):
    pool_name: PoolName
    is_create: StrictBool = False


class CreateEmptyVolumeCmd(AgentCommand):
    install_path: ImagePath
    size: StrictInt = Field(gt=0, le=1 << 50)


class CloneVolumeCmd(AgentCommand):
    src_path: SnapshotPath
    dst_path: ImagePath


class FlattenVolumeCmd(AgentCommand):
    install_path: ImagePath
    volume_uuid: str | None = Field(None, pattern=r"^[0-9a-fA-F-]{32,36}$")


class CopyVolumeCmd(AgentCommand):
    src_path: ImageOrSnapshotPath
    dst_path: ImagePath


class ResizeVolumeCmd(AgentCommand):
    install_path: ImagePath
    size: StrictInt = Field(gt=0, le=1 << 50)


class VolumeCmd(AgentCommand):
    install_path: ImagePath


class VolumeSizeReply(CephReply):
    size: int = 0


class DeleteImageCacheCmd(AgentCommand):
    image_path: ImagePath
    snapshot_path: SnapshotPath | None = None


class SnapshotCmd(AgentCommand):
    snapshot_path: SnapshotPath


class SnapshotReply(CephReply):
    size: int = 0  # of the image
