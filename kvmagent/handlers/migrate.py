"""``/vm/migrate``: live migration to another host (async; cancellable via /job/cancel).

The destination needs nothing from its agent for shared storage, except the Ceph
secrets of RBD disks (``/vm/createcephsecret`` there first); for ``copy`` the
coordinator first creates each local disk's file on the destination
(``/localstorage/volume/createempty``, same path and size).
"""

from __future__ import annotations

from agentlib.agent import Agent
from agentlib.models import AgentReply
from agentlib.tasks import Task
from kvmagent.drivers.migration import MigrationDriver
from kvmagent.drivers.vms import VmDriver
from kvmagent.models.migrate import MigrateVmCmd


def register(agent: Agent, vms: VmDriver) -> None:
    migrations = MigrationDriver(vms)

    @agent.async_("/vm/migrate", long=True)
    def migrate(cmd: MigrateVmCmd, task: Task) -> AgentReply:
        """Live-migrate a running VM to ``destHostIp``; aborted after ``timeout``."""
        with agent.locks.hold(f"vm:{cmd.vm_uuid}"):
            migrations.migrate(cmd.vm_uuid, cmd.dest_host_ip, cmd.storage_migration_policy,
                               cmd.timeout, lambda: task.cancelled)
        return AgentReply()
