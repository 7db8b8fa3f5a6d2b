"""L2 networks: ``/network/...`` bridges on a NIC (novlan), a VLAN, or a VXLAN.

All commands are idempotent: they converge the host to what the command says. Work on a
link holds ``link:<name>`` for every link it may touch (the NamedLocks order them), so two
commands never race on one bridge or one NIC.
"""

from __future__ import annotations

import logging

from agentlib.agent import Agent
from agentlib.locks import NamedLocks
from agentlib.models import AgentReply
from agentlib.routes import Routes
from kvmagent.drivers import bridges
from kvmagent.models.l2 import (
    CheckBridgeCmd,
    CheckPhysicalNetworkInterfaceCmd,
    CheckPhysicalNetworkInterfaceReply,
    CheckVlanBridgeCmd,
    CreateBridgeCmd,
    CreateVlanBridgeCmd,
    CreateVxlanBridgeCmd,
    DeleteVlanBridgeCmd,
    DeleteVxlanBridgeCmd,
    PopulateVxlanFdbCmd,
)

log = logging.getLogger(__name__)

routes = Routes()


def register(agent: Agent) -> None:
    agent.include(routes, agent.locks)


def _links(locks: NamedLocks, *names: str):
    return locks.hold(*(f"link:{n}" for n in names))


def _done(what: str, steps: list) -> AgentReply:
    log.info("%s: %s", what, f"{len(steps)} change(s)" if steps else "already in place")
    return AgentReply()


@routes.sync("/network/checkphysicalnetworkinterface")
def check_interfaces(
    locks: NamedLocks, cmd: CheckPhysicalNetworkInterfaceCmd,
) -> CheckPhysicalNetworkInterfaceReply:
    """Fail naming every interface in ``interfaceNames`` this host does not have."""
    missing = bridges.missing_interfaces(cmd.interface_names)
    if not missing:
        return CheckPhysicalNetworkInterfaceReply()
    return CheckPhysicalNetworkInterfaceReply(
        success=False, failed_interface_names=missing,
        error=f"physical network interface(s) not found on this host: {', '.join(missing)}")


@routes.sync("/network/l2novlan/createbridge")
def create_novlan(locks: NamedLocks, cmd: CreateBridgeCmd) -> AgentReply:
    """Bridge the NIC, moving its IPv4 addresses and routes onto the bridge."""
    with _links(locks, cmd.physical_interface_name, cmd.bridge_name):
        steps = bridges.create_novlan_bridge(cmd.bridge_name, cmd.physical_interface_name)
    return _done(f"bridge {cmd.bridge_name} on {cmd.physical_interface_name}", steps)


@routes.sync("/network/l2novlan/checkbridge")
def check_novlan(locks: NamedLocks, cmd: CheckBridgeCmd) -> AgentReply:
    """Succeed if the bridge exists with the NIC plugged into it."""
    bridges.check_bridge(cmd.bridge_name, cmd.physical_interface_name)
    return AgentReply()


@routes.sync("/network/l2vlan/createbridge")
def create_vlan(locks: NamedLocks, cmd: CreateVlanBridgeCmd) -> AgentReply:
    """Bridge ``<iface>.<vlan>`` (made if missing); fails clearly without 802.1Q."""
    device = bridges.vlan_device_name(cmd.physical_interface_name, cmd.vlan)
    with _links(locks, cmd.physical_interface_name, device, cmd.bridge_name):
        steps = bridges.create_vlan_bridge(cmd.bridge_name, cmd.physical_interface_name,
                                           cmd.vlan)
    return _done(f"bridge {cmd.bridge_name} on {device}", steps)


@routes.sync("/network/l2vlan/checkbridge")
def check_vlan(locks: NamedLocks, cmd: CheckVlanBridgeCmd) -> AgentReply:
    """Succeed if the bridge exists with ``<iface>.<vlan>`` plugged into it."""
    device = bridges.vlan_device_name(cmd.physical_interface_name, cmd.vlan)
    bridges.check_bridge(cmd.bridge_name, device)
    return AgentReply()


@routes.sync("/network/l2vlan/deletebridge")
def delete_vlan(locks: NamedLocks, cmd: DeleteVlanBridgeCmd) -> AgentReply:
    """Delete the bridge and its VLAN device; a missing one counts as deleted."""
    named = []
    if cmd.physical_interface_name and cmd.vlan:
        named.append(bridges.vlan_device_name(cmd.physical_interface_name, cmd.vlan))
    with _links(locks, cmd.bridge_name, *named):
        steps = bridges.delete_bridge(cmd.bridge_name, "vlan", named)
    return _done(f"delete VLAN bridge {cmd.bridge_name}", steps)


@routes.sync("/network/l2vxlan/createbridge")
def create_vxlan(locks: NamedLocks, cmd: CreateVxlanBridgeCmd) -> AgentReply:
    """Bridge ``vxlan<vni>`` (no learning) with flood entries for exactly ``peers``."""
    device = bridges.vxlan_device_name(cmd.vni)
    with _links(locks, device, cmd.bridge_name):
        steps = bridges.create_vxlan_bridge(cmd.bridge_name, cmd.vni, cmd.local_ip,
                                            cmd.dst_port, cmd.peers)
    return _done(f"bridge {cmd.bridge_name} on {device}", steps)


@routes.sync("/network/l2vxlan/populatefdb")
def populate_fdb(locks: NamedLocks, cmd: PopulateVxlanFdbCmd) -> AgentReply:
    """Converge ``vxlan<vni>``'s flood entries to exactly ``peers``."""
    device = bridges.vxlan_device_name(cmd.vni)
    with _links(locks, device):
        steps = bridges.populate_fdb(cmd.vni, cmd.peers)
    return _done(f"fdb of {device}", steps)


@routes.sync("/network/l2vxlan/deletebridge")
def delete_vxlan(locks: NamedLocks, cmd: DeleteVxlanBridgeCmd) -> AgentReply:
    """Delete the bridge and ``vxlan<vni>``; a missing one counts as deleted."""
    device = bridges.vxlan_device_name(cmd.vni)
    with _links(locks, cmd.bridge_name, device):
        steps = bridges.delete_bridge(cmd.bridge_name, "vxlan", [device])
    return _done(f"delete VXLAN bridge {cmd.bridge_name}", steps)
