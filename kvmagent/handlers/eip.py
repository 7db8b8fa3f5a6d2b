"""Distributed EIP: ``/flatnetworkprovider/eip/*`` (ZStack 1.2's flat network provider).

Each EIP is worked on under ``eip:<uuid>``. A batch checks every EIP (fields by the
model, bridges here) before it makes anything, then applies them one by one. Apply and
delete are idempotent; each EIP's ``changed`` in the reply says whether anything had to
be done. The handlers are sync: an apply takes ~0.2 s, a repeated one ~0.1 s.
"""

from __future__ import annotations

import logging
import time

from agentlib.agent import Agent
from agentlib.locks import NamedLocks
from agentlib.routes import Routes
from kvmagent.drivers import eip as eips
from kvmagent.hostchecks import require_bridge
from kvmagent.models.eip import (
    ApplyEipCmd,
    BatchApplyEipCmd,
    BatchDeleteEipCmd,
    DeleteEipCmd,
    EipRef,
    EipReply,
    EipStatus,
    EipTO,
)

log = logging.getLogger(__name__)

routes = Routes()


def register(agent: Agent) -> None:
    agent.include(routes, agent.locks)


def _apply_all(locks: NamedLocks, items: list[tuple[str, EipTO]]) -> EipReply:
    """``items``: (field, EIP) pairs, the field naming the EIP in errors."""
    for field, e in items:
        require_bridge(f"{field}.publicBridgeName", e.public_bridge_name)
        require_bridge(f"{field}.vmBridgeName", e.vm_bridge_name)
    reply = EipReply()
    for _, e in items:
        started = time.monotonic()
        with locks.hold(f"eip:{e.eip_uuid}"):
            changed = eips.apply(e)
        n = eips.names(e.eip_uuid)
        log.info("EIP %s (%s -> %s) %s in %.3fs", e.eip_uuid, e.vip, e.nic_ip,
                 "applied" if changed else "already in place", time.monotonic() - started)
        reply.eips.append(EipStatus(eip_uuid=e.eip_uuid, namespace=n.netns, changed=changed,
                                    public_interface=n.public_outer,
                                    private_interface=n.private_outer,
                                    gateway_mac=n.gateway_mac))
    return reply


def _delete_all(locks: NamedLocks, items: list[EipRef]) -> EipReply:
    reply = EipReply()
    for e in items:
        started = time.monotonic()
        with locks.hold(f"eip:{e.eip_uuid}"):
            changed = eips.delete(e.eip_uuid)
        log.info("EIP %s %s in %.3fs", e.eip_uuid, "deleted" if changed else "was not here",
                 time.monotonic() - started)
        reply.eips.append(EipStatus(eip_uuid=e.eip_uuid,
                                    namespace=eips.names(e.eip_uuid).netns,
                                    changed=changed))
    return reply


@routes.sync("/flatnetworkprovider/eip/apply")
def apply(locks: NamedLocks, cmd: ApplyEipCmd) -> EipReply:
    """Make the EIP on this host (the VM's): its namespace on the public and the VM's
    bridge, DNAT/SNAT between vip and nicIp, and the VM's gateway answered by it."""
    return _apply_all(locks, [("eip", cmd.eip)])


@routes.sync("/flatnetworkprovider/eip/batchapply")
def batch_apply(locks: NamedLocks, cmd: BatchApplyEipCmd) -> EipReply:
    """Apply several EIPs; all are checked before any is made."""
    return _apply_all(locks, [(f"eips.{i}", e) for i, e in enumerate(cmd.eips)])


@routes.sync("/flatnetworkprovider/eip/delete")
def delete(locks: NamedLocks, cmd: DeleteEipCmd) -> EipReply:
    """Remove the EIP's namespace, links and ebtables rules; absent is fine."""
    return _delete_all(locks, [cmd.eip])


@routes.sync("/flatnetworkprovider/eip/batchdelete")
def batch_delete(locks: NamedLocks, cmd: BatchDeleteEipCmd) -> EipReply:
    """Delete several EIPs."""
    return _delete_all(locks, cmd.eips)
