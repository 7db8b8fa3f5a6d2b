"""Metadata and user data: ``/flatnetworkprovider/userdata/*`` (ZStack's flat network
provider). The service shares the L3's DHCP namespace, so each namespace is worked on
under the DHCP driver's lock (``netns:<name>``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from agentlib.agent import Agent
from agentlib.errors import AgentError
from agentlib.groupcommit import GroupCommit
from agentlib.locks import NamedLocks
from agentlib.routes import Routes
from kvmagent.drivers.dhcp import FlatDhcp, hold_namespaces
from kvmagent.drivers.metadata import MetadataService
from kvmagent.models.userdata import (
    ApplyUserdataCmd,
    BatchApplyUserdataCmd,
    CleanupUserdataCmd,
    ReleaseUserdataCmd,
    UserdataReply,
    UserdataTO,
)

routes = Routes()


@dataclass
class Userdata:
    """What the handlers work on: the metadata service, the agent's locks, and the
    single VMs' applies and releases that queue for one namespace, each done together
    (one ensure of its address, rules and server)."""

    service: MetadataService
    locks: NamedLocks
    adds: GroupCommit[tuple[str, UserdataTO], int]
    removes: GroupCommit[str, int | None]


def register(agent: Agent, data_dir: Path, dhcp: FlatDhcp) -> MetadataService:
    """Serve the endpoints; re-adopt (or restart) the servers of a previous run. A
    DHCP namespace deleted takes its metadata server, rules and files with it."""
    service = MetadataService(data_dir, dhcp)
    service.adopt()
    dhcp.before_delete(service.cleanup)

    def add(ns: str, items: list[tuple[str, UserdataTO]]) -> list[int | BaseException]:
        """The VMs checked (one by one if any is refused: its error is its own
        request's), then one write."""
        checked: list[list[dict] | BaseException] = []
        try:
            checked = [[r] for r in service.records(ns, items)]
        except AgentError:
            for item in items:
                try:
                    checked.append(service.records(ns, [item]))
                except AgentError as exc:
                    checked.append(exc)
        records = [r for c in checked if isinstance(c, list) for r in c]
        pid = service.write(ns, records) if records else 0
        return [c if isinstance(c, BaseException) else pid for c in checked]

    def remove(ns: str, vm_ips: list[str]) -> list[int | None]:
        return [service.release(ns, *vm_ips)] * len(vm_ips)

    lock = partial(hold_namespaces, agent.locks)
    agent.include(routes, Userdata(service, agent.locks, GroupCommit(lock, add),
                                   GroupCommit(lock, remove)))
    return service


def _apply_all(ud: Userdata, items: list[tuple[str, UserdataTO]],
               rebuild: bool) -> UserdataReply:
    """Every VM is checked, under all the namespaces' locks, before any is written."""
    groups: dict[str, list[tuple[str, UserdataTO]]] = {}
    for field, to in items:
        groups.setdefault(to.namespace_name, []).append((field, to))
    reply = UserdataReply()
    with hold_namespaces(ud.locks, *groups):
        records = {ns: ud.service.records(ns, group) for ns, group in groups.items()}
        for ns, recs in records.items():
            reply.server_pids[ns] = ud.service.write(ns, recs, rebuild)
    return reply


@routes.sync("/flatnetworkprovider/userdata/apply")
def apply(ud: Userdata, cmd: ApplyUserdataCmd) -> UserdataReply:
    """Serve this VM's metadata and user data at 169.254.169.254 (add or replace)."""
    ns = cmd.userdata.namespace_name
    return UserdataReply(server_pids={ns: ud.adds.submit(ns, ("userdata", cmd.userdata))})


@routes.sync("/flatnetworkprovider/userdata/batchapply")
def batch_apply(ud: Userdata, cmd: BatchApplyUserdataCmd) -> UserdataReply:
    """Like apply for many VMs (``rebuild``: the namespaces named serve exactly them)."""
    return _apply_all(ud, [(f"userdata.{i}", to) for i, to in enumerate(cmd.userdata)],
                      cmd.rebuild)


@routes.sync("/flatnetworkprovider/userdata/release")
def release(ud: Userdata, cmd: ReleaseUserdataCmd) -> UserdataReply:
    """Stop serving this VM (absent is fine)."""
    pid = ud.removes.submit(cmd.namespace_name, cmd.vm_ip)
    return UserdataReply(server_pids={cmd.namespace_name: pid} if pid else {})


@routes.sync("/flatnetworkprovider/userdata/cleanup")
def cleanup(ud: Userdata, cmd: CleanupUserdataCmd) -> UserdataReply:
    """Remove the namespace's metadata server, address, rules and files."""
    with hold_namespaces(ud.locks, cmd.namespace_name):
        ud.service.cleanup(cmd.namespace_name)
    return UserdataReply()
