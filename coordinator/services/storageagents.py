"""Reaching the storage agents: a Ceph storage's cephagent on the first of its mons that
answers, an SFTP backup storage's sftpbsagent on its host, each through its typed
client. Their errors are said as the storage's: an :class:`ApiError` naming it, or
:class:`StorageUnreachable` when no agent of it answers (GC keeps the work then)."""

from __future__ import annotations

from collections.abc import Callable

from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError
from coordinator.clients.cephagent import CephAgent
from coordinator.clients.sftpbsagent import SftpBsAgent
from coordinator.context import Context


class StorageUnreachable(ApiError):
    """No agent of the storage answers (as opposed to one that refuses the command)."""


def ceph_agent_urls(storage: dict) -> list[str]:
    """The cephagent of each mon, in the order given."""
    port = storage["config"]["agentPort"]
    return [f"http://{mon}:{port}" for mon in storage["config"]["monHosts"]]


def ceph_agent(ctx: Context, storage: dict) -> CephAgent:
    """The cephagents of a Ceph storage (``name`` and ``config`` are all it reads)."""
    return CephAgent.at(ctx.agents, ceph_agent_urls(storage), _said_as(storage["name"]))


def sftp_agent(ctx: Context, bs: dict) -> SftpBsAgent:
    """The sftpbsagent of an SFTP backup storage."""
    return SftpBsAgent.at(ctx.agents, f"http://{bs['hostname']}:{bs['agent_port']}",
                          _said_as(bs["name"]))


def _said_as(name: str) -> Callable[[AgentCallError], ApiError]:
    def error(exc: AgentCallError) -> ApiError:
        return (StorageUnreachable if exc.unreachable else ApiError)(f"{name}: {exc}")
    return error
