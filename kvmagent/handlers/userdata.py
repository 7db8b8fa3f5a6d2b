"""Metadata and user data: ``/flatnetworkprovider/userdata/*`` (ZStack's flat network
provider). The service shares the L3's DHCP namespace, so each namespace is worked on
under the DHCP driver's lock (``netns:<name>``)."""

from __future__ import annotations

from pathlib import Path

from agentlib.agent import Agent
from kvmagent.drivers.dhcp import FlatDhcp, lock_name
from kvmagent.drivers.metadata import MetadataService
from kvmagent.models.userdata import (
    ApplyUserdataCmd,
    BatchApplyUserdataCmd,
    CleanupUserdataCmd,
    ReleaseUserdataCmd,
    UserdataReply,
    UserdataTO,
)


def register(agent: Agent, data_dir: Path, dhcp: FlatDhcp) -> MetadataService:
    """Register the endpoints; re-adopt (or restart) the servers of a previous run. A
    DHCP namespace deleted takes its metadata server, rules and files with it."""
    service = MetadataService(data_dir, dhcp)
    service.adopt()
    dhcp.before_delete(service.cleanup)

    def apply_all(items: list[tuple[str, UserdataTO]], rebuild: bool) -> UserdataReply:
        """Every VM is checked, under all the namespaces' locks, before any is written."""
        groups: dict[str, list[tuple[str, UserdataTO]]] = {}
        for field, to in items:
            groups.setdefault(to.namespace_name, []).append((field, to))
        reply = UserdataReply()
        with agent.locks.hold(*(lock_name(ns) for ns in groups)):
            records = {ns: service.records(ns, group) for ns, group in groups.items()}
            for ns, recs in records.items():
                reply.server_pids[ns] = service.write(ns, recs, rebuild)
        return reply

    @agent.sync("/flatnetworkprovider/userdata/apply")
    def apply(cmd: ApplyUserdataCmd) -> UserdataReply:
        """Serve this VM's metadata and user data at 169.254.169.254 (add or replace)."""
        return apply_all([("userdata", cmd.userdata)], rebuild=False)

    @agent.sync("/flatnetworkprovider/userdata/batchapply")
    def batch_apply(cmd: BatchApplyUserdataCmd) -> UserdataReply:
        """Like apply for many VMs (``rebuild``: the namespaces named serve exactly them)."""
        return apply_all([(f"userdata.{i}", to) for i, to in enumerate(cmd.userdata)],
                         cmd.rebuild)

    @agent.sync("/flatnetworkprovider/userdata/release")
    def release(cmd: ReleaseUserdataCmd) -> UserdataReply:
        """Stop serving this VM (absent is fine)."""
        with agent.locks.hold(lock_name(cmd.namespace_name)):
            pid = service.release(cmd.namespace_name, cmd.vm_ip)
        return UserdataReply(server_pids={cmd.namespace_name: pid} if pid else {})

    @agent.sync("/flatnetworkprovider/userdata/cleanup")
    def cleanup(cmd: CleanupUserdataCmd) -> UserdataReply:
        """Remove the namespace's metadata server, address, rules and files."""
        with agent.locks.hold(lock_name(cmd.namespace_name)):
            service.cleanup(cmd.namespace_name)
        return UserdataReply()

    return service
