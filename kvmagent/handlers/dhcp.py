"""Distributed DHCP: ``/flatnetworkprovider/dhcp/*`` (ZStack's flat network provider).

A command may touch several namespaces; each is worked on under its own lock
(``netns:<name>``), so concurrent VM creations never race on one namespace, and each
namespace's hosts file is written once and dnsmasq reloaded once per command. Every
entry is checked before anything is written. The handlers are sync: the slowest,
a 10,000-entry batch, answers in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from agentlib.agent import Agent
from agentlib.groupcommit import GroupCommit
from agentlib.locks import NamedLocks
from agentlib.routes import Routes
from kvmagent.drivers.dhcp import FlatDhcp, hold_namespaces
from kvmagent.hostchecks import require_bridge
from kvmagent.models.dhcp import (
    ApplyDhcpCmd,
    BatchApplyDhcpCmd,
    ConvergeDhcpCmd,
    DeleteNamespaceCmd,
    DhcpEntry,
    DhcpReply,
    FlushDhcpCmd,
    NamespaceStatus,
    PrepareDhcpCmd,
    PrepareDhcpReply,
    ReleaseDhcpCmd,
    ResetDefaultGatewayCmd,
)

routes = Routes()


@dataclass
class Dhcp:
    """What the handlers work on: the driver, the agent's locks, and the adds and the
    releases that queue for one namespace, each done together (one hosts file write
    and reload)."""

    driver: FlatDhcp
    locks: NamedLocks
    adds: GroupCommit[list[DhcpEntry], NamespaceStatus]
    removes: GroupCommit[list[str], NamespaceStatus]


def register(agent: Agent, data_dir: Path) -> FlatDhcp:
    """Serve the endpoints; re-adopt (or restore) the namespaces of a previous run."""
    driver = FlatDhcp(data_dir)
    driver.adopt()

    def add(ns: str, batches: list[list[DhcpEntry]]) -> list[NamespaceStatus]:
        status = driver.apply(ns, [e for entries in batches for e in entries])
        return [status] * len(batches)

    def remove(ns: str, batches: list[list[str]]) -> list[NamespaceStatus]:
        return [driver.release(ns, [m for macs in batches for m in macs])] * len(batches)

    lock = partial(hold_namespaces, agent.locks)
    agent.include(routes, Dhcp(driver, agent.locks, GroupCommit(lock, add),
                               GroupCommit(lock, remove)))
    return driver


def _apply_all(dhcp: Dhcp, commands: list[tuple[str, ApplyDhcpCmd]]) -> DhcpReply:
    """Fold the commands into one change per namespace (a rebuild drops what came before
    it for its namespaces), then apply each."""
    plan: dict[str, tuple[bool, list[DhcpEntry]]] = {}
    for field, c in commands:
        for ns, entries in dhcp.driver.group(c.dhcp, field).items():
            if c.rebuild:
                plan[ns] = (True, list(entries))
            else:
                plan.setdefault(ns, (False, []))[1].extend(entries)
    reply = DhcpReply()
    for ns, (rebuild, entries) in plan.items():
        if not rebuild:
            reply.namespaces[ns] = dhcp.adds.submit(ns, entries)
            continue
        with hold_namespaces(dhcp.locks, ns):
            reply.namespaces[ns] = dhcp.driver.apply(ns, entries, rebuild)
    return reply


def _converge(dhcp: Dhcp, namespaces: set[str], entries: list[DhcpEntry]) -> DhcpReply:
    groups = dhcp.driver.group(entries)
    reply = DhcpReply()
    for ns in sorted(namespaces | set(groups)):
        with hold_namespaces(dhcp.locks, ns):
            if dhcp.driver.state(ns) is not None:
                reply.namespaces[ns] = dhcp.driver.apply(ns, groups.get(ns, []), rebuild=True,
                                                         full=True)
    return reply


@routes.sync("/flatnetworkprovider/dhcp/prepare")
def prepare(dhcp: Dhcp, cmd: PrepareDhcpCmd) -> PrepareDhcpReply:
    """Make the L3's DHCP namespace on this host: joined to the bridge, serving as
    dhcpServerIp, cut off from other hosts' DHCP at the uplink, dnsmasq running."""
    require_bridge("bridgeName", cmd.bridge_name)
    with hold_namespaces(dhcp.locks, cmd.namespace_name):
        status = dhcp.driver.prepare(cmd)
        ns = dhcp.driver.namespace(cmd.namespace_name)
    return PrepareDhcpReply(namespace_name=ns.netns, inner_interface=ns.inner,
                            outer_interface=ns.outer, uplink=ns.uplink, **status.model_dump())


@routes.sync("/flatnetworkprovider/dhcp/apply")
def apply(dhcp: Dhcp, cmd: ApplyDhcpCmd) -> DhcpReply:
    """Serve these entries (add or replace by MAC; rebuild: exactly these)."""
    return _apply_all(dhcp, [("dhcp", cmd)])


@routes.sync("/flatnetworkprovider/dhcp/batchApply")
def batch_apply(dhcp: Dhcp, cmd: BatchApplyDhcpCmd) -> DhcpReply:
    """Like apply, for many entries: one hosts file write and one reload per
    namespace. Takes ``dhcp`` and/or ZStack's ``dhcpInfos`` (a list of applies)."""
    return _apply_all(dhcp, [("dhcp", cmd)] + [(f"dhcpInfos.{i}.dhcp", c)
                                               for i, c in enumerate(cmd.dhcp_infos)])


@routes.sync("/flatnetworkprovider/dhcp/release")
def release(dhcp: Dhcp, cmd: ReleaseDhcpCmd) -> DhcpReply:
    """Stop serving these MACs; ones not served here are fine."""
    groups: dict[str, list[str]] = {}
    for ref in cmd.dhcp:
        groups.setdefault(ref.namespace_name, []).append(ref.mac)
    reply = DhcpReply()
    for ns, macs in groups.items():
        reply.namespaces[ns] = dhcp.removes.submit(ns, macs)
    return reply


@routes.sync("/flatnetworkprovider/dhcp/connect")
def connect(dhcp: Dhcp, cmd: ConvergeDhcpCmd) -> DhcpReply:
    """Converge the whole host: every DHCP namespace here serves exactly the entries
    sent for it (none if none), with its links, rules and dnsmasq re-checked."""
    return _converge(dhcp, set(dhcp.driver.namespaces()), cmd.dhcp)


@routes.sync("/flatnetworkprovider/dhcp/flush")
def flush(dhcp: Dhcp, cmd: FlushDhcpCmd) -> DhcpReply:
    """Converge the named namespaces (namespaceName and those of the entries) to
    exactly the entries sent."""
    return _converge(dhcp, {cmd.namespace_name} if cmd.namespace_name else set(), cmd.dhcp)


@routes.sync("/flatnetworkprovider/dhcp/resetDefaultGateway")
def reset_default_gateway(dhcp: Dhcp, cmd: ResetDefaultGatewayCmd) -> DhcpReply:
    """Move a VM's default route (and DNS) from one of its NICs' L3s to another's."""
    reply = DhcpReply()
    changes = [(cmd.namespace_name_of_gateway_to_remove, cmd.mac_of_gateway_to_remove,
                False, None),
               (cmd.namespace_name_of_gateway_to_add, cmd.mac_of_gateway_to_add, True,
                cmd.gateway_to_add)]
    for ns, mac, default, gateway in changes:
        if ns and dhcp.driver.state(ns) is not None:
            with hold_namespaces(dhcp.locks, ns):
                reply.namespaces[ns] = dhcp.driver.set_default(ns, mac.lower(), default,
                                                               gateway)
    return reply


@routes.sync("/flatnetworkprovider/dhcp/deletenamespace")
def delete_namespace(dhcp: Dhcp, cmd: DeleteNamespaceCmd) -> DhcpReply:
    """Stop the namespace's dnsmasq and remove its namespace, veth, ebtables chain and
    files; a namespace that is not here counts as deleted."""
    with hold_namespaces(dhcp.locks, cmd.namespace_name):
        dhcp.driver.delete(cmd.namespace_name)
    return DhcpReply()
