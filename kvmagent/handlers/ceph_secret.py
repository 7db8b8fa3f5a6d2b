"""Ceph secrets: ``/vm/createcephsecret`` and ``/vm/deletecephsecret``.

The coordinator creates the secret on every host that may run a VM with RBD disks
(before a start or an incoming migration); both commands are idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentlib.agent import Agent
from agentlib.locks import NamedLocks
from agentlib.models import AgentReply
from agentlib.routes import Routes
from agentlib.types import uuid_key
from kvmagent.drivers.libvirt_conn import LibvirtConnection
from kvmagent.drivers.secrets import SecretDriver
from kvmagent.models.ceph_secret import CreateCephSecretCmd, DeleteCephSecretCmd

routes = Routes()


@dataclass
class Secrets:
    driver: SecretDriver
    locks: NamedLocks

    def lock(self, uuid: str):
        return self.locks.hold(f"secret:{uuid_key(uuid)}")


def register(agent: Agent, conn: LibvirtConnection) -> None:
    agent.include(routes, Secrets(SecretDriver(conn), agent.locks))


@routes.sync("/vm/createcephsecret")
def create(secrets: Secrets, cmd: CreateCephSecretCmd) -> AgentReply:
    """Define (or update) the libvirt ceph secret ``uuid`` holding ``userKey``."""
    with secrets.lock(cmd.uuid):
        secrets.driver.set_ceph_secret(cmd.uuid, cmd.user_key, cmd.user_name)
    return AgentReply()


@routes.sync("/vm/deletecephsecret")
def delete(secrets: Secrets, cmd: DeleteCephSecretCmd) -> AgentReply:
    """Remove the libvirt secret ``uuid``; a missing one counts as removed."""
    with secrets.lock(cmd.uuid):
        secrets.driver.delete(cmd.uuid)
    return AgentReply()
