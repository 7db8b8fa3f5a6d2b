"""VIPs and EIPs: create, attach, detach, delete (:mod:`coordinator.services.eips`)."""

from __future__ import annotations

from agentlib.types import DisplayName, IPv4, Uuid
from coordinator.api import ApiMessage, api
from coordinator.apis.common import inventory_reply
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.services import eips
from coordinator.services.lookup import require


class CreateVipMsg(ApiMessage):
    name: DisplayName
    l3_network_uuid: Uuid
    required_ip: IPv4 | None = None
    description: str = ""
    resource_uuid: Uuid | None = None


class CreateEipMsg(ApiMessage):
    name: DisplayName
    vip_uuid: Uuid
    vm_nic_uuid: Uuid | None = None
    description: str = ""
    resource_uuid: Uuid | None = None


class AttachEipMsg(ApiMessage):
    eip_uuid: Uuid
    vm_nic_uuid: Uuid


class UuidMsg(ApiMessage):
    uuid: Uuid


@api("CreateVip")
def create_vip(msg: CreateVipMsg, ctx: Context) -> dict:
    """An address of a (public) L3 network, for an EIP."""
    uuid = msg.resource_uuid or new_uuid()
    eips.create_vip(ctx, uuid, msg.l3_network_uuid, msg.name, msg.description,
                    msg.required_ip)
    return inventory_reply(ctx, "vip", uuid)


@api("DeleteVip")
def delete_vip(msg: UuidMsg, ctx: Context) -> dict:
    """Delete a VIP no EIP uses; its address is free again."""
    eips.delete_vip(ctx, msg.uuid)
    return {}


@api("CreateEip")
def create_eip(msg: CreateEipMsg, ctx: Context) -> dict:
    """An EIP on a VIP; with vmNicUuid, attached to that VM NIC at once."""
    uuid = msg.resource_uuid or new_uuid()
    eips.create(ctx, uuid, msg.vip_uuid, msg.name, msg.description, msg.vm_nic_uuid)
    return inventory_reply(ctx, "eip", uuid)


@api("AttachEip")
def attach_eip(msg: AttachEipMsg, ctx: Context) -> dict:
    """Bind an EIP to a VM NIC (applied on the VM's host if it runs)."""
    require(ctx, "eip", msg.eip_uuid, "eipUuid")
    eips.attach(ctx, msg.eip_uuid, msg.vm_nic_uuid, "vmNicUuid")
    return inventory_reply(ctx, "eip", msg.eip_uuid)


@api("DetachEip")
def detach_eip(msg: UuidMsg, ctx: Context) -> dict:
    """Unbind an EIP from its VM NIC (removed from the VM's host)."""
    eips.detach(ctx, msg.uuid)
    return inventory_reply(ctx, "eip", msg.uuid)


@api("DeleteEip")
def delete_eip(msg: UuidMsg, ctx: Context) -> dict:
    """Detach and delete an EIP (its VIP stays)."""
    eips.delete(ctx, msg.uuid)
    return {}
