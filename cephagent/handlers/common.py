"""What both prefixes serve alike: connect, ping, checkpool, facts; the reply stamp."""

from __future__ import annotations

import logging
from typing import TypeVar

from agentlib.agent import Agent
from agentlib.errors import AgentError
from agentlib.identity import Identity
from agentlib.models import EmptyCommand
from cephagent.drivers.cluster import CephClient, Mon
from cephagent.drivers.images import RbdImages
from cephagent.drivers.paths import TMP_SUFFIX, RbdPath
from cephagent.models.common import (
    CephReply,
    CheckPoolCmd,
    ConnectCmd,
    ConnectReply,
    MonTO,
    PingCmd,
)
from cephagent.models.primary import FactsReply

log = logging.getLogger(__name__)

R = TypeVar("R", bound=CephReply)

PING_OBJECT = "zfleet-cephagent-ping"


def stamp(client: CephClient, reply: R) -> R:
    """Fill in the cluster's fsid and capacity (every reply carries them)."""
    reply.fsid = client.fsid()
    reply.total_capacity, reply.available_capacity = client.capacity()
    return reply


def mon_tos(mons: list[Mon]) -> list[MonTO]:
    return [MonTO(name=m.name, addr=m.addr, addrs=list(m.addrs)) for m in mons]


def image_lock(agent: Agent, *paths: RbdPath, timeout: float = -1):
    """Serialise work on the images behind ``paths`` (snapshots lock their image)."""
    return agent.locks.hold(*(f"rbd:{p.pool}/{p.image}" for p in paths), timeout=timeout)


def sweep(agent: Agent, images: RbdImages, pools: list[str]) -> None:
    """Remove what interrupted copies and downloads left in ``pools`` (their images under
    the temporary name), unless that work is running now (its image lock is held)."""
    for pool in pools:
        for tmp in images.leftovers(pool):
            final = RbdPath(pool, tmp.image.removesuffix(TMP_SUFFIX))
            try:
                with image_lock(agent, final, timeout=0):
                    images.delete(tmp)
                log.warning("removed %s, left by an interrupted copy or download", tmp)
            except TimeoutError:
                continue  # being written right now


def register(agent: Agent, client: CephClient, identity: Identity, prefix: str) -> None:
    @agent.sync(f"{prefix}/connect")
    def connect(cmd: ConnectCmd) -> ConnectReply:
        """Connect to the cluster; answers its fsid, capacity and mons. ``sendCommandUrl``
        (optional) is where progress reports go."""
        if cmd.send_command_url is not None:
            identity.update(sendCommandUrl=str(cmd.send_command_url))
            agent.reporter.url = str(cmd.send_command_url)
        return stamp(client, ConnectReply(mons=mon_tos(client.mons())))

    @agent.sync(f"{prefix}/ping", quiet=True)
    def ping(cmd: PingCmd) -> ConnectReply:
        """Prove the cluster answers, is the expected one (fsid, mon) and is writable."""
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
        return stamp(client, ConnectReply(mons=mon_tos(mons)))

    @agent.sync(f"{prefix}/checkpool")
    def checkpool(cmd: CheckPoolCmd) -> CephReply:
        """Fail naming every pool in ``pools`` that does not exist."""
        missing = client.missing_pools(cmd.pools)
        if missing:
            raise AgentError(f"pools: {', '.join(missing)} do(es) not exist in cluster "
                             f"{client.fsid()}")
        return stamp(client, CephReply())

    @agent.sync(f"{prefix}/facts")
    def facts(cmd: EmptyCommand) -> FactsReply:
        """The cluster's identity, Ceph version, mons and capacity."""
        version = client.mon_command("version").get("version", "")
        return stamp(client, FactsReply(ceph_version=version, mons=mon_tos(client.mons())))
