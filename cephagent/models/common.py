"""Field types and replies shared by the primary and backup storage commands.

Install paths are ``ceph://<pool>/<image>`` and snapshots ``ceph://<pool>/<image>@<snap>``;
each field says which of the two it takes, so a snapshot where an image is wanted (or the
reverse) is a 400 naming the field, as is any name outside the strict charset.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

from agentlib.callbackurl import CallbackUrl
from agentlib.models import AgentCommand, AgentReply
from agentlib.types import Uuid
from cephagent.models.paths import NAME, RbdPath

_POOL = re.compile(NAME)


def _pool(v: str) -> str:
    if not _POOL.fullmatch(v) or ".." in v:
        raise ValueError(f"not a valid pool name: {v!r} (letters, digits, '_', '.', '-'; "
                         "no '..')")
    return v


def _path(snapshot: bool | None):
    def check(v: str) -> str:
        p = RbdPath.parse(v)  # BadPath is a ValueError: pydantic reports it
        if snapshot is True and p.snap is None:
            raise ValueError(f"must be a snapshot path ceph://<pool>/<image>@<snap>: {v!r}")
        if snapshot is False and p.snap is not None:
            raise ValueError(f"must be an image path ceph://<pool>/<image>, not a snapshot: "
                             f"{v!r}")
        return v

    return check


_Str = StringConstraints(min_length=1, max_length=400)
PoolName = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_pool)]
ImagePath = Annotated[str, _Str, AfterValidator(_path(False))]
SnapshotPath = Annotated[str, _Str, AfterValidator(_path(True))]
ImageOrSnapshotPath = Annotated[str, _Str, AfterValidator(_path(None))]


class MonTO(BaseModel):
    """A mon as the cluster's monmap lists it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    name: str
    addr: str  # ip:port of its v1 endpoint
    addrs: list[str]  # its whole addrvec


class CephReply(AgentReply):
    """What (almost) every cephagent reply carries: which cluster, and how full it is."""

    fsid: str = ""
    total_capacity: int | None = None
    available_capacity: int | None = None


class StorageCmd(AgentCommand):
    """Fields the coordinator sends with every storage command; the agent needs none."""

    uuid: Uuid | None = None


class ConnectCmd(StorageCmd):
    """``sendCommandUrl``: where progress reports go (kept across agent restarts)."""

    send_command_url: CallbackUrl | None = None


class ConnectReply(CephReply):
    mons: list[MonTO] = []


class PingCmd(AgentCommand):
    """Liveness that proves the cluster is the one connected and writable.

    ``fsid``: the cluster the coordinator added (a different one fails: the agent's
    ceph.conf now points elsewhere). ``monAddr``: the mon the coordinator knows, which must
    still be in the monmap. ``poolName``: a pool to write a test object to.
    """

    fsid: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F-]{36}$")] | None = None
    mon_addr: Annotated[
        str, StringConstraints(pattern=r"^[0-9A-Za-z.:\[\]-]{1,64}$")] | None = None
    pool_name: PoolName | None = None


class CheckPoolCmd(AgentCommand):
    pools: list[PoolName] = Field(min_length=1)


class ImageSizeCmd(AgentCommand):
    install_path: ImagePath


class ImageSizeReply(CephReply):
    size: int = 0
    actual_size: int = 0
