"""VM HA commands: the self-fencer (``/ha/selffencer/*``) and the peer scan (``/ha/scanhost``).

Both reach a Ceph pool with the access fields of :class:`CephAccess`; the cephx key is a
credential, kept out of every repr, log and error message.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
)
from pydantic.alias_generators import to_camel

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import IPv4, Uuid
from kvmagent.models.ceph_secret import CephUser, CephxKey


def _mon_host(v: str) -> str:
    ip, _, port = v.rpartition(":")
    try:
        ipaddress.IPv4Address(ip)
        ok = port.isdigit() and 1 <= int(port) <= 65535
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"not a valid IPv4 ip:port: {v!r}")
    return v


PoolName = Annotated[str, StringConstraints(
    min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
"""A Ceph pool name as zfleet makes them (the part before ``/`` in ``ceph://pool/image``)."""

MonHost = Annotated[str, StringConstraints(max_length=32), AfterValidator(_mon_host)]
"""One mon as ``ip:port`` (port 3300 is msgr v2, any other port msgr v1, e.g. 6789)."""


class CephAccess(AgentCommand):
    """Where the heartbeat objects live and how to reach them (no ceph.conf needed)."""

    pool: PoolName
    mon_hosts: list[MonHost] = Field(min_length=1, max_length=16)
    user_name: CephUser = "admin"
    user_key: CephxKey = Field(repr=False)  # a credential: never in a repr or a log


class SelfFencerSetupCmd(CephAccess):
    ps_uuid: Uuid
    host_uuid: Uuid
    interval: StrictFloat = Field(5.0, ge=0.1, le=600, description="seconds between heartbeats")
    max_attempts: StrictInt = Field(6, ge=1, le=100, description=(
        "fence after interval*maxAttempts seconds without storage and without coordinator"))


class SelfFencerSetupReply(AgentReply):
    heartbeat_object: str = ""


class SelfFencerCancelCmd(AgentCommand):
    ps_uuid: Uuid


class FencerStatus(BaseModel):
    """One fencer's state (epochs are this host's clock; null = never)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    ps_uuid: str
    pool: str
    host_uuid: str
    interval: float
    max_attempts: int
    counter: int
    last_write_ok: float | None
    failing_since: float | None
    last_contact: float
    fenced_at: float | None
    fenced_vms: list[str]


class SelfFencerStatusReply(AgentReply):
    fencers: list[FencerStatus] = []


MAX_SCAN_WINDOW = 600.0
"""A scan holds a long-task thread for its window: 10 x the default (5 s x (6 + 2) + 20 s);
the coordinator's fencer settings are bounded to stay within it."""


class ScanHostCmd(CephAccess):
    target_host_uuid: Uuid
    target_ip: IPv4
    target_port: StrictInt = Field(7070, ge=1, le=65535, description="the target's kvmagent port")
    window: StrictFloat = Field(ge=0.1, le=MAX_SCAN_WINDOW,
                                description="seconds to watch the heartbeat")
    interval: StrictFloat = Field(1.0, ge=0.05, le=600, description="seconds between reads")


class ScanHostReply(AgentReply):
    reachable: bool = False
    heartbeat: Literal["Alive", "Stale", "Missing"] = "Missing"
    heartbeat_error: str = ""
    counter: int | None = None
    last_write_time: float | None = None
    """The writer's own clock: informational, never compared with this host's."""
