"""``/vm/migrate``: live migration to another host (async; cancellable via /job/cancel).

The destination needs nothing from its agent for shared storage, except the Ceph
secrets of RBD disks (``/vm/createcephsecret`` there first); for ``copy`` the
coordinator first creates each local disk's file on the destination
(``/localstorage/volume/createempty``, same path and size).
"""

from __future__ import annotations

from dataclasses import dataclass

from agentlib.agent import Agent
from agentlib.locks import NamedLocks
from agentlib.models import AgentReply
from agentlib.routes import Routes
from agentlib.tasks import Task
from kvmagent.drivers.migration import MigrationDriver
from kvmagent.drivers.vms import VmDriver
from kvmagent.models.migrate import MigrateVmCmd

routes = Routes()


@dataclass
class Migrations:
    driver: MigrationDriver
    locks: NamedLocks


def register(agent: Agent, vms: VmDriver) -> None:
    agent.include(routes, Migrations(MigrationDriver(vms), agent.locks))


@routes.async_("/vm/migrate", long=True)
def migrate(m: Migrations, cmd: MigrateVmCmd, task: Task) -> AgentReply:
    """Live-migrate a running VM to ``destHostIp``; aborted after ``timeout``."""
    with m.locks.hold(f"vm:{cmd.vm_uuid}"):
        m.driver.migrate(cmd.vm_uuid, cmd.dest_host_ip, cmd.storage_migration_policy,
                         cmd.timeout, lambda: task.cancelled)
    return AgentReply()
