"""Reaching the storage agents: a Ceph storage's cephagent on the first of its mons that
answers, an SFTP backup storage's sftpbsagent on its host."""

from __future__ import annotations

from coordinator.agentclient import AgentCallError
from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.jobs import Deadline

CEPH_PS = "/ceph/primarystorage"
CEPH_BS = "/ceph/backupstorage"
SFTP_BS = "/sftpbackupstorage"


class StorageUnreachable(ApiError):
    """No agent of the storage answers (as opposed to one that refuses the command)."""


def ceph_agent_urls(storage: dict) -> list[str]:
    """The cephagent of each mon, in the order given."""
    port = storage["config"]["agentPort"]
    return [f"http://{mon}:{port}" for mon in storage["config"]["monHosts"]]


def ceph_call(ctx: Context, storage: dict, path: str, body: dict,
              deadline: Deadline | None = None) -> dict:
    """A cephagent command (async with a ``deadline``) on the first mon that answers."""
    errors = []
    for url in ceph_agent_urls(storage):
        try:
            return _call(ctx, url, path, body, deadline)
        except AgentCallError as exc:
            if not exc.unreachable:
                raise ApiError(f"{storage['name']}: {exc}") from None
            errors.append(str(exc))
    raise StorageUnreachable(f"{storage['name']}: no cephagent answers: {'; '.join(errors)}")


def sftp_call(ctx: Context, bs: dict, path: str, body: dict,
              deadline: Deadline | None = None) -> dict:
    """An sftpbsagent command (async with a ``deadline``)."""
    url = f"http://{bs['hostname']}:{bs['agent_port']}"
    try:
        return _call(ctx, url, path, body, deadline)
    except AgentCallError as exc:
        raise (StorageUnreachable if exc.unreachable else ApiError)(
            f"{bs['name']}: {exc}") from None


def _call(ctx: Context, url: str, path: str, body: dict, deadline: Deadline | None) -> dict:
    if deadline is not None:
        return ctx.agents.call_async(url, path, body, deadline.left())
    return ctx.agents.call(url, path, body)
