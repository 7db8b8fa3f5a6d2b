"""``/ceph/backupstorage/*`` commands and replies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, StringConstraints, model_validator

from agentlib.models import AgentCommand
from agentlib.progress import ProgressReply
from agentlib.types import Uuid
from agentlib.urlfetch import FetchError, check_url
from cephagent.models.common import CephReply, ImagePath, PoolName, StorageCmd


class BackupInitCmd(StorageCmd):
    """A named pool must exist; without one, ``bak-t-<uuid>`` is created."""

    pool_name: PoolName | None = None

    @model_validator(mode="after")
    def _uuid_names_the_default(self) -> BackupInitCmd:
        if self.pool_name is None and self.uuid is None:
            raise ValueError("uuid is required when poolName is not given "
                             "(the pool created is named after it)")
        return self

    def pool(self) -> str:
        return self.pool_name or f"bak-t-{self.uuid}"


class BackupInitReply(CephReply):
    pool_name: str = ""
    created: bool = False


def _url(v: str) -> str:
    """Scheme, host and characters are checked here (400); whether a file URL lies under
    the agent's file_url_roots is checked when the download runs."""
    try:
        check_url(v, file_roots=[Path("/")])
    except FetchError as exc:
        raise ValueError(str(exc)) from None
    return v


class DownloadImageCmd(AgentCommand):
    url: Annotated[str, StringConstraints(min_length=1, max_length=4096), AfterValidator(_url)]
    install_path: ImagePath
    image_uuid: Uuid


class DownloadImageReply(CephReply):
    install_path: str = ""
    size: int = 0  # virtual size of the image
    actual_size: int = 0  # bytes downloaded
    md5_sum: str = ""  # of the bytes downloaded
    format: str = ""  # what was downloaded: raw or qcow2 (the RBD image is always raw)


class ImageProgressCmd(AgentCommand):
    image_uuid: Uuid


class ImageProgressReply(CephReply, ProgressReply):
    pass
