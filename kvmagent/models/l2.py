"""kvmagent L2 network models: bridges on a NIC, on a VLAN, on a VXLAN (ZStack's fields;
VXLAN also takes ZStack's ``vtepIp``/``dstport`` spellings)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, StrictInt, model_validator

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import IPv4, LinkName

VlanId = Annotated[StrictInt, Field(ge=1, le=4094)]
Vni = Annotated[StrictInt, Field(ge=1, le=16777215)]
UdpPort = Annotated[StrictInt, Field(ge=1, le=65535)]
VXLAN_PORT = 4789  # IANA's; Linux's own default (8472) predates it


class CheckPhysicalNetworkInterfaceCmd(AgentCommand):
    interface_names: list[LinkName] = Field(min_length=1)


class CheckPhysicalNetworkInterfaceReply(AgentReply):
    failed_interface_names: list[str] = []


class _BridgeOnInterface(AgentCommand):
    physical_interface_name: LinkName
    bridge_name: LinkName

    @model_validator(mode="after")
    def _distinct(self):
        if self.bridge_name == self.physical_interface_name:
            raise ValueError("bridgeName must differ from physicalInterfaceName")
        return self


class CreateBridgeCmd(_BridgeOnInterface):
    pass


class CheckBridgeCmd(_BridgeOnInterface):
    pass


class CreateVlanBridgeCmd(_BridgeOnInterface):
    vlan: VlanId


class CheckVlanBridgeCmd(_BridgeOnInterface):
    vlan: VlanId


class DeleteVlanBridgeCmd(AgentCommand):
    bridge_name: LinkName
    physical_interface_name: LinkName | None = None
    vlan: VlanId | None = None
    """With the interface, names the VLAN device to delete even if it left the bridge."""


class CreateVxlanBridgeCmd(AgentCommand):
    vni: Vni
    bridge_name: LinkName
    local_ip: IPv4 = Field(validation_alias=AliasChoices("localIp", "vtepIp"))
    """This host's VTEP address (one of its interfaces' addresses)."""
    dst_port: UdpPort = Field(VXLAN_PORT, validation_alias=AliasChoices("dstPort", "dstport"))
    peers: list[IPv4] = []
    """The other hosts' VTEP addresses; the fdb is converged to exactly these."""


class PopulateVxlanFdbCmd(AgentCommand):
    vni: Vni
    peers: list[IPv4]


class DeleteVxlanBridgeCmd(AgentCommand):
    vni: Vni
    bridge_name: LinkName
