"""KVM hosts: AddKVMHost, ReconnectHost, DeleteHost (:mod:`coordinator.services.hosts`)."""

from __future__ import annotations

from pydantic import Field

from agentlib.types import DisplayName, IPv4, Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.services import hosts
from coordinator.services.hosts import KVMAGENT_PORT
from coordinator.services.lookup import require


class AddKvmHostMsg(ApiMessage):
    name: DisplayName
    management_ip: IPv4
    cluster_uuid: Uuid
    description: str = ""
    username: str = Field("root", description="for deploying the agent with ansible/")
    password: str | None = Field(None, repr=False, description="for deploying the agent "
                                 "with ansible/ (never stored)")
    ssh_port: int = Field(22, ge=1, le=65535)
    agent_port: int = Field(KVMAGENT_PORT, ge=1, le=65535,
                            description="zfleet: where the host's kvmagent listens")
    resource_uuid: Uuid | None = None


class HostUuidMsg(ApiMessage):
    uuid: Uuid


@api("AddKVMHost", long=True)
def add_kvm_host(msg: AddKvmHostMsg, ctx: Context, deadline) -> dict:
    """Add a KVM host whose agent runs at managementIp:agentPort, and connect it."""
    uuid = hosts.add(ctx, msg.cluster_uuid, msg.name, msg.description, msg.management_ip,
                     msg.agent_port, msg.resource_uuid or new_uuid())
    return inventory_reply(ctx, "host", uuid)


@api("ReconnectHost", long=True)
def reconnect_host(msg: HostUuidMsg, ctx: Context, deadline) -> dict:
    """Connect a host's agent again (after an agent upgrade or a lost connection)."""
    require(ctx, "host", msg.uuid, "uuid")
    hosts.connect(ctx, msg.uuid)
    return inventory_reply(ctx, "host", msg.uuid)


@api("DeleteHost")
def delete_host(msg: HostUuidMsg, ctx: Context) -> dict:
    """Remove a host with no VMs on it from the inventory."""
    hosts.delete(ctx, msg.uuid)
    return {}
