"""Distributed EIP commands (ZStack's ``/flatnetworkprovider/eip/*`` and its EipTO).

Every value ends up in a link name, an address, an iptables or ebtables rule, so the
models refuse what does not parse, names longer than the kernel's 15 characters, and
addresses that cannot work (nicIp outside the network of nicGateway/nicNetmask, a
vipGateway the EIP cannot reach) with a 400 naming the field, before anything is made.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from agentlib.models import AgentCommand, AgentReply
from agentlib.types import IPv4, LinkName, MacAddress, Netmask, Uuid, uuid_key


def _host_address(ip: str, netmask: str, what: str) -> ipaddress.IPv4Network:
    """The network of ``ip``/``netmask``; ValueError if ``ip`` is its network or
    broadcast address (only a host address can carry an EIP or a gateway)."""
    net = ipaddress.IPv4Network(f"{ip}/{netmask}", strict=False)
    if net.prefixlen < 31 and ip in (str(net.network_address), str(net.broadcast_address)):
        raise ValueError(f"{ip} is not a host address of {net} ({what})")
    return net


class EipRef(AgentCommand):
    """What ``delete`` needs of an EIP: every name on the host derives from its uuid
    (ZStack sends the whole EipTO; the other fields are ignored)."""

    eip_uuid: Uuid

    @field_validator("eip_uuid")
    @classmethod
    def _canonical(cls, v: str) -> str:
        return uuid_key(v)


class EipTO(EipRef):
    """One EIP: ``vip`` on the public bridge, NATed to the VM NIC ``nicIp`` whose
    gateway ``nicGateway`` the EIP namespace answers for on the VM's bridge."""

    vip_netmask: Netmask
    vip: IPv4
    vip_gateway: IPv4
    nic_name: LinkName
    nic_mac: MacAddress
    nic_netmask: Netmask
    nic_gateway: IPv4
    nic_ip: IPv4
    public_bridge_name: LinkName
    vm_bridge_name: LinkName

    @field_validator("vip")
    @classmethod
    def _vip(cls, v: str, info: ValidationInfo) -> str:
        if "vip_netmask" in info.data:
            _host_address(v, info.data["vip_netmask"], "vip/vipNetmask")
        return v

    @field_validator("vip_gateway")
    @classmethod
    def _vip_gateway(cls, v: str, info: ValidationInfo) -> str:
        if "vip" in info.data and "vip_netmask" in info.data:
            net = ipaddress.IPv4Network(f"{info.data['vip']}/{info.data['vip_netmask']}",
                                        strict=False)
            if ipaddress.IPv4Address(v) not in net or v == info.data["vip"]:
                raise ValueError(f"{v} is not another host of {net} (vip/vipNetmask): the "
                                 "EIP could not reach its public gateway")
        return v

    @field_validator("nic_mac")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()

    @field_validator("nic_gateway")
    @classmethod
    def _nic_gateway(cls, v: str, info: ValidationInfo) -> str:
        if "nic_netmask" in info.data:
            _host_address(v, info.data["nic_netmask"], "nicGateway/nicNetmask")
        return v

    @field_validator("nic_ip")
    @classmethod
    def _nic_ip(cls, v: str, info: ValidationInfo) -> str:
        if "nic_gateway" in info.data and "nic_netmask" in info.data:
            net = ipaddress.IPv4Network(f"{info.data['nic_gateway']}/{info.data['nic_netmask']}",
                                        strict=False)
            if ipaddress.IPv4Address(v) not in net or v == info.data["nic_gateway"]:
                raise ValueError(f"{v} is not a VM address of {net}, the network of "
                                 "nicGateway/nicNetmask")
            _host_address(v, info.data["nic_netmask"], "nicIp/nicNetmask")
        return v


class ApplyEipCmd(AgentCommand):
    eip: EipTO


class BatchApplyEipCmd(AgentCommand):
    eips: list[EipTO] = []


class DeleteEipCmd(AgentCommand):
    eip: EipRef


class BatchDeleteEipCmd(AgentCommand):
    eips: list[EipRef] = []


class EipStatus(BaseModel):
    """One EIP after a command: where it lives on the host and whether anything had to
    change (a repeated apply or delete changes nothing)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    eip_uuid: str
    namespace: str
    changed: bool
    public_interface: str = ""
    private_interface: str = ""
    gateway_mac: str = ""


class EipReply(AgentReply):
    eips: list[EipStatus] = []
