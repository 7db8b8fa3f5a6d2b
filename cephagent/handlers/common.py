"""What both prefixes serve alike (connect, ping, checkpool, facts) and what every handler
works on: :class:`Ceph`, with the reply stamp and the image locks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

from agentlib.errors import AgentError
from agentlib.identity import Identity
from agentlib.locks import NamedLocks
from agentlib.models import EmptyCommand
from agentlib.progress import ProgressBoard
from agentlib.reports import Reporter
from agentlib.routes import Routes
from cephagent.drivers.cluster import CephClient, Mon
from cephagent.drivers.download import ImageDownloader
from cephagent.drivers.images import RbdImages
from cephagent.models.common import (
    CephReply,
    CheckPoolCmd,
    ConnectCmd,
    ConnectReply,
    MonTO,
    PingCmd,
)
from cephagent.models.paths import TMP_SUFFIX, RbdPath
from cephagent.models.primary import FactsReply

log = logging.getLogger(__name__)

R = TypeVar("R", bound=CephReply)

PING_OBJECT = "zfleet-cephagent-ping"

routes = Routes()
"""Served under each prefix (``Agent.include(routes, ceph, prefix)``)."""


@dataclass
class Ceph:
    """The cluster and its images, and the agent's locks, reporter and progress board:
    what the handlers of both prefixes work on."""

    client: CephClient
    images: RbdImages
    downloader: ImageDownloader
    board: ProgressBoard
    identity: Identity
    reporter: Reporter
    locks: NamedLocks

    def stamp(self, reply: R) -> R:
        """Fill in the cluster's fsid and capacity (every reply carries them)."""
        reply.fsid = self.client.fsid()
        reply.total_capacity, reply.available_capacity = self.client.capacity()
        return reply

    def lock(self, *paths: RbdPath, timeout: float = -1):
        """Serialise work on the images behind ``paths`` (snapshots lock their image)."""
        return self.locks.hold(*(f"rbd:{p.pool}/{p.image}" for p in paths), timeout=timeout)

    def sweep(self, pools: list[str]) -> None:
        """Remove what interrupted copies and downloads left in ``pools`` (their images
        under the temporary name), unless that work is running now (its lock is held)."""
        for pool in pools:
            for tmp in self.images.leftovers(pool):
                final = RbdPath(pool, tmp.image.removesuffix(TMP_SUFFIX))
                try:
                    with self.lock(final, timeout=0):
                        self.images.delete(tmp)
                    log.warning("removed %s, left by an interrupted copy or download", tmp)
                except TimeoutError:
                    continue  # being written right now


def mon_tos(mons: list[Mon]) -> list[MonTO]:
    return [MonTO(name=m.name, addr=m.addr, addrs=list(m.addrs)) for m in mons]


@routes.sync("/connect")
def connect(ceph: Ceph, cmd: ConnectCmd) -> ConnectReply:
    """Connect to the cluster; answers its fsid, capacity and mons. ``sendCommandUrl``
    (optional) is where progress reports go."""
    if cmd.send_command_url is not None:
        ceph.identity.update(sendCommandUrl=str(cmd.send_command_url))
        ceph.reporter.url = str(cmd.send_command_url)
    return ceph.stamp(ConnectReply(mons=mon_tos(ceph.client.mons())))


@routes.sync("/ping", quiet=True)
def ping(ceph: Ceph, cmd: PingCmd) -> ConnectReply:
    """Prove the cluster answers, is the expected one (fsid, mon) and is writable."""
    client = ceph.client
    fsid = client.fsid()
    if cmd.fsid is not None and cmd.fsid.lower() != fsid.lower():
        raise AgentError(f"fsid: the cluster of {client.conf_path} is {fsid}, not "
                         f"{cmd.fsid}: the agent now points at a different cluster")
    mons = client.mons()
    if cmd.mon_addr is not None and not any(
            cmd.mon_addr in (m.addr, m.addr.split(":")[0], *m.addrs) for m in mons):
        raise AgentError(f"monAddr: {cmd.mon_addr} is not in the monmap of {fsid} ("
                         + ", ".join(f"{m.name}={m.addr}" for m in mons) + ")")
    if cmd.pool_name is not None:
        client.write_probe(cmd.pool_name, PING_OBJECT)
    return ceph.stamp(ConnectReply(mons=mon_tos(mons)))


@routes.sync("/checkpool")
def checkpool(ceph: Ceph, cmd: CheckPoolCmd) -> CephReply:
    """Fail naming every pool in ``pools`` that does not exist."""
    missing = ceph.client.missing_pools(cmd.pools)
    if missing:
        raise AgentError(f"pools: {', '.join(missing)} do(es) not exist in cluster "
                         f"{ceph.client.fsid()}")
    return ceph.stamp(CephReply())


@routes.sync("/facts")
def facts(ceph: Ceph, cmd: EmptyCommand) -> FactsReply:
    """The cluster's identity, Ceph version, mons and capacity."""
    version = ceph.client.mon_command("version").get("version", "")
    return ceph.stamp(FactsReply(ceph_version=version, mons=mon_tos(ceph.client.mons())))
