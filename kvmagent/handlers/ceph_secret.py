"""Ceph secrets: ``/vm/createcephsecret`` and ``/vm/deletecephsecret``.

The coordinator creates the secret on every host that may run a VM with RBD disks
(before a start or an incoming migration); both commands are idempotent.
"""

from __future__ import annotations

from agentlib.agent import Agent
from agentlib.models import AgentReply
from agentlib.types import uuid_key
from kvmagent.drivers.libvirt_conn import LibvirtConnection
from kvmagent.drivers.secrets import SecretDriver
from kvmagent.models.ceph_secret import CreateCephSecretCmd, DeleteCephSecretCmd


def register(agent: Agent, conn: LibvirtConnection) -> None:
    secrets = SecretDriver(conn)

    @agent.sync("/vm/createcephsecret")
    def create(cmd: CreateCephSecretCmd) -> AgentReply:
        """Define (or update) the libvirt ceph secret ``uuid`` holding ``userKey``."""
        with agent.locks.hold(f"secret:{uuid_key(cmd.uuid)}"):
            secrets.set_ceph_secret(cmd.uuid, cmd.user_key, cmd.user_name)
        return AgentReply()

    @agent.sync("/vm/deletecephsecret")
    def delete(cmd: DeleteCephSecretCmd) -> AgentReply:
        """Remove the libvirt secret ``uuid``; a missing one counts as removed."""
        with agent.locks.hold(f"secret:{uuid_key(cmd.uuid)}"):
            secrets.delete(cmd.uuid)
        return AgentReply()
