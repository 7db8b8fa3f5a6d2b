"""L2 and L3 networks, IP ranges, DNS, network services (:mod:`coordinator.services.networks`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from agentlib.types import DisplayName, IPv4, LinkName, Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.services import networks
from coordinator.services.networks import FLAT, FLAT_PROVIDER_UUID, SERVICE_TYPES


class CreateL2NoVlanNetworkMsg(ApiMessage):
    name: DisplayName
    zone_uuid: Uuid
    physical_interface: LinkName
    description: str = ""
    resource_uuid: Uuid | None = None


class CreateL2VlanNetworkMsg(CreateL2NoVlanNetworkMsg):
    vlan: int = Field(ge=1, le=4094)


class L2ClusterMsg(ApiMessage):
    l2_network_uuid: Uuid
    cluster_uuid: Uuid


class CreateL3NetworkMsg(ApiMessage):
    name: DisplayName
    l2_network_uuid: Uuid
    description: str = ""
    type: Literal["L3BasicNetwork"] = "L3BasicNetwork"
    system: bool = False
    dns_domain: str = Field("", max_length=253, pattern=r"^[A-Za-z0-9.-]*$")
    resource_uuid: Uuid | None = None


class AddIpRangeMsg(ApiMessage):
    l3_network_uuid: Uuid
    name: DisplayName
    start_ip: IPv4
    end_ip: IPv4
    netmask: IPv4
    gateway: IPv4
    description: str = ""
    resource_uuid: Uuid | None = None


class AddIpRangeByNetworkCidrMsg(ApiMessage):
    l3_network_uuid: Uuid
    name: DisplayName
    network_cidr: str = Field(max_length=18, pattern=r"^[0-9./]+$")
    description: str = ""
    resource_uuid: Uuid | None = None


class AddDnsToL3NetworkMsg(ApiMessage):
    l3_network_uuid: Uuid
    dns: IPv4


class AttachNetworkServiceToL3NetworkMsg(ApiMessage):
    l3_network_uuid: Uuid
    network_services: dict[str, list[str]] = Field(
        description="provider (Flat, or its uuid) -> service types (DHCP, DNS, Userdata, "
                    "Eip)")

    @field_validator("network_services")
    @classmethod
    def _known(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for provider, types in v.items():
            if provider not in (FLAT, FLAT_PROVIDER_UUID):
                raise ValueError(f"unknown network service provider {provider!r} (this "
                                 f"coordinator has {FLAT}, uuid {FLAT_PROVIDER_UUID})")
            for t in types:
                if t not in SERVICE_TYPES:
                    raise ValueError(f"{provider} has no service {t!r} "
                                     f"({', '.join(SERVICE_TYPES)})")
        return v


class UuidMsg(ApiMessage):
    uuid: Uuid


@api("CreateL2NoVlanNetwork")
def create_l2_novlan(msg: CreateL2NoVlanNetworkMsg, ctx: Context) -> dict:
    """An L2 network: a bridge on physicalInterface of each host of its clusters."""
    uuid = msg.resource_uuid or new_uuid()
    networks.create_l2(ctx, uuid, msg.zone_uuid, msg.name, msg.description,
                       "L2NoVlanNetwork", msg.physical_interface, None)
    return inventory_reply(ctx, "l2_network", uuid)


@api("CreateL2VlanNetwork")
def create_l2_vlan(msg: CreateL2VlanNetworkMsg, ctx: Context) -> dict:
    """An L2 network on VLAN ``vlan`` of physicalInterface."""
    uuid = msg.resource_uuid or new_uuid()
    networks.create_l2(ctx, uuid, msg.zone_uuid, msg.name, msg.description,
                       "L2VlanNetwork", msg.physical_interface, msg.vlan)
    return inventory_reply(ctx, "l2_network", uuid)


@api("AttachL2NetworkToCluster", long=True)
def attach_l2(msg: L2ClusterMsg, ctx: Context, deadline) -> dict:
    """Make the L2's bridge on every connected host of the cluster, then attach."""
    networks.attach_l2(ctx, msg.l2_network_uuid, msg.cluster_uuid)
    return inventory_reply(ctx, "l2_network", msg.l2_network_uuid)


@api("DetachL2NetworkFromCluster")
def detach_l2(msg: L2ClusterMsg, ctx: Context) -> dict:
    """Detach (bridges stay on the hosts; VMs already on them keep working)."""
    networks.detach_l2(ctx, msg.l2_network_uuid, msg.cluster_uuid)
    return inventory_reply(ctx, "l2_network", msg.l2_network_uuid)


@api("DeleteL2Network")
def delete_l2(msg: UuidMsg, ctx: Context) -> dict:
    """Delete an L2 network with no L3 network on it."""
    networks.delete_l2(ctx, msg.uuid)
    return {}


@api("CreateL3Network")
def create_l3(msg: CreateL3NetworkMsg, ctx: Context) -> dict:
    """An L3 network (addresses, DNS, services) on an L2 network."""
    uuid = msg.resource_uuid or new_uuid()
    networks.create_l3(ctx, uuid, msg.l2_network_uuid, msg.name, msg.description, msg.type,
                       msg.system, msg.dns_domain)
    return inventory_reply(ctx, "l3_network", uuid)


@api("DeleteL3Network")
def delete_l3(msg: UuidMsg, ctx: Context) -> dict:
    """Delete an L3 network no VM NIC uses."""
    networks.delete_l3(ctx, msg.uuid)
    return {}


@api("AddIpRange")
def add_ip_range(msg: AddIpRangeMsg, ctx: Context) -> dict:
    """Addresses startIp..endIp (in gateway/netmask) for the L3's VMs."""
    uuid = networks.add_range(ctx, msg.l3_network_uuid, msg.name, msg.start_ip, msg.end_ip,
                              msg.netmask, msg.gateway, msg.description, msg.resource_uuid)
    return inventory_reply(ctx, "ip_range", uuid)


@api("AddIpRangeByNetworkCidr")
def add_ip_range_by_cidr(msg: AddIpRangeByNetworkCidrMsg, ctx: Context) -> dict:
    """A whole network: gateway = first address, the rest for VMs (ZStack's rule)."""
    uuid = networks.add_range_by_cidr(ctx, msg.l3_network_uuid, msg.name, msg.network_cidr,
                                      msg.description, msg.resource_uuid)
    return inventory_reply(ctx, "ip_range", uuid)


@api("DeleteIpRange")
def delete_ip_range(msg: UuidMsg, ctx: Context) -> dict:
    """Delete an IP range none of whose addresses a VM uses."""
    networks.delete_range(ctx, msg.uuid)
    return {}


@api("AddDnsToL3Network")
def add_dns(msg: AddDnsToL3NetworkMsg, ctx: Context) -> dict:
    """Give the L3's VMs this DNS server (by DHCP)."""
    networks.add_dns(ctx, msg.l3_network_uuid, msg.dns)
    return inventory_reply(ctx, "l3_network", msg.l3_network_uuid)


@api("AttachNetworkServiceToL3Network")
def attach_services(msg: AttachNetworkServiceToL3NetworkMsg, ctx: Context) -> dict:
    """Enable network services of the flat provider (DHCP, DNS, Userdata, Eip)."""
    networks.attach_services(ctx, msg.l3_network_uuid,
                             [t for types in msg.network_services.values() for t in types])
    return inventory_reply(ctx, "l3_network", msg.l3_network_uuid)
