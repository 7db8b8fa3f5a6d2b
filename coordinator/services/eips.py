"""VIPs and distributed EIPs (ZStack 1.2's flat network provider): an EIP lives on the
host of its VM, in a namespace the kvmagent makes there, and moves with the VM.

A VIP is an address of a public L3; an EIP binds it to a VM NIC. The EIP is applied on
the VM's host while the VM runs there (attach, VM start, migration) and deleted there
when the VM stops, moves away or the EIP is detached.
"""

from __future__ import annotations

import logging

from coordinator import ipam
from coordinator.api import ApiError
from coordinator.clients import kvmagent
from coordinator.clients.endpoint import Call
from coordinator.context import Context
from coordinator.services import networks
from coordinator.services.hosts import kvm
from coordinator.services.lookup import require

log = logging.getLogger(__name__)


def eip_to(ctx: Context, eip: dict, nic: dict) -> dict:
    """kvmagent's EipTO of ``eip`` on ``nic`` (its fields)."""
    vip = ctx.db.get("vip", eip["vip_uuid"])
    public_l3 = ctx.db.get("l3_network", vip["l3_network_uuid"])
    vm_l3 = ctx.db.get("l3_network", nic["l3_network_uuid"])
    return dict(eip_uuid=eip["uuid"], vip=vip["ip"], vip_netmask=vip["netmask"],
                vip_gateway=vip["gateway"], nic_name=networks.tap_name(nic),
                nic_mac=nic["mac"], nic_ip=nic["ip"], nic_netmask=nic["netmask"],
                nic_gateway=nic["gateway"],
                public_bridge_name=networks.bridge_name(ctx.db.get(
                    "l2_network", public_l3["l2_network_uuid"])),
                vm_bridge_name=networks.bridge_name(ctx.db.get(
                    "l2_network", vm_l3["l2_network_uuid"])))


def apply_on_host(ctx: Context, vm: dict, host: dict) -> None:
    """The EIPs of the VM's NICs on ``host`` (the public bridges made first)."""
    for eip, nic in _eips_of(ctx, vm["uuid"]):
        vip = ctx.db.get("vip", eip["vip_uuid"])
        public_l2 = ctx.db.get("l2_network", ctx.db.get(
            "l3_network", vip["l3_network_uuid"])["l2_network_uuid"])
        networks.ensure_bridge(ctx, public_l2, host)
        kvm(ctx, host).apply_eip(eip=eip_to(ctx, eip, nic))


def delete_commands(ctx: Context, vm: dict) -> list[Call]:
    """The host commands that remove the VM's EIPs from its host."""
    eips = [dict(eip_uuid=eip["uuid"]) for eip, _ in _eips_of(ctx, vm["uuid"])]
    return [kvmagent.BATCH_DELETE_EIPS.call(eips=eips)] if eips else []


def delete_on_host(ctx: Context, vm: dict, host: dict) -> None:
    for call in delete_commands(ctx, vm):
        kvm(ctx, host).run(call)


def _eips_of(ctx: Context, vm_uuid: str) -> list[tuple[dict, dict]]:
    out = []
    for nic in ctx.db.find("vm_nic", "vm_uuid = ?", (vm_uuid,)):
        for eip in ctx.db.find("eip", "vm_nic_uuid = ?", (nic["uuid"],)):
            out.append((eip, nic))
    return out


def _running_host(ctx: Context, nic: dict) -> tuple[dict, dict | None]:
    vm = ctx.db.get("vm", nic["vm_uuid"])
    host = ctx.db.get("host", vm["host_uuid"]) if vm["state"] == "Running" else None
    return vm, host


def create_vip(ctx: Context, uuid: str, l3_uuid: str, name: str, description: str,
               required_ip: str | None) -> None:
    """An address of a (public) L3 network, for an EIP."""
    require(ctx, "l3_network", l3_uuid, "l3NetworkUuid")
    with ctx.db.tx():
        ip = ipam.allocate(ctx.db, l3_uuid, uuid, "Vip", required_ip)
        ctx.db.insert("vip", {"uuid": uuid, "name": name, "description": description,
                              "l3_network_uuid": l3_uuid, "ip": ip["ip"],
                              "netmask": ip["netmask"], "gateway": ip["gateway"]})


def delete_vip(ctx: Context, uuid: str) -> None:
    """Delete a VIP no EIP uses; its address is free again."""
    require(ctx, "vip", uuid, "uuid")
    if ctx.db.find("eip", "vip_uuid = ?", (uuid,)):
        raise ApiError(f"uuid: VIP {uuid} is used by an EIP; delete that first")
    with ctx.db.tx():
        ipam.release(ctx.db, uuid)
        ctx.db.delete("vip", uuid)


def attach(ctx: Context, eip_uuid: str, nic_uuid: str, field: str) -> None:
    """Bind the EIP to a VM NIC, applied on the VM's host if it runs there."""
    nic = require(ctx, "vm_nic", nic_uuid, field)
    eip = ctx.db.get("eip", eip_uuid)
    if eip["vm_nic_uuid"] == nic_uuid:
        return
    if eip["vm_nic_uuid"]:
        raise ApiError(f"eipUuid: EIP {eip['name']} is attached to NIC "
                       f"{eip['vm_nic_uuid']}; detach it first")
    if ctx.db.find("eip", "vm_nic_uuid = ?", (nic_uuid,)):
        raise ApiError(f"{field}: NIC {nic_uuid} has an EIP already")
    vm, host = _running_host(ctx, nic)
    with ctx.locks.hold(f"vm:{vm['uuid']}"):
        ctx.db.update("eip", eip_uuid, vm_nic_uuid=nic_uuid, guest_ip=nic["ip"])
        if host is not None:
            try:
                apply_on_host(ctx, vm, host)
            except Exception as exc:  # noqa: BLE001 - undone and said with the host
                ctx.db.update("eip", eip_uuid, vm_nic_uuid=None, guest_ip=None)
                raise ApiError(f"host {host['name']}: {exc}") from None


def create(ctx: Context, uuid: str, vip_uuid: str, name: str, description: str,
           nic_uuid: str | None) -> None:
    """An EIP on a VIP; with ``nic_uuid``, attached to that VM NIC at once."""
    require(ctx, "vip", vip_uuid, "vipUuid")
    if ctx.db.find("eip", "vip_uuid = ?", (vip_uuid,)):
        raise ApiError(f"vipUuid: VIP {vip_uuid} has an EIP already")
    ctx.db.insert("eip", {"uuid": uuid, "name": name, "description": description,
                          "vip_uuid": vip_uuid})
    if nic_uuid:
        try:
            attach(ctx, uuid, nic_uuid, "vmNicUuid")
        except ApiError:
            ctx.db.delete("eip", uuid)
            raise


def detach(ctx: Context, eip_uuid: str) -> None:
    """Unbind the EIP from its VM NIC (removed from the VM's host if it runs)."""
    eip = require(ctx, "eip", eip_uuid, "uuid")
    if not eip["vm_nic_uuid"]:
        return
    vm, host = _running_host(ctx, ctx.db.get("vm_nic", eip["vm_nic_uuid"]))
    with ctx.locks.hold(f"vm:{vm['uuid']}"):
        if host is not None:
            kvm(ctx, host).delete_eip(eip=dict(eip_uuid=eip["uuid"]))
        ctx.db.update("eip", eip["uuid"], vm_nic_uuid=None, guest_ip=None)


def delete(ctx: Context, eip_uuid: str) -> None:
    """Detach and delete an EIP (its VIP stays)."""
    detach(ctx, eip_uuid)
    ctx.db.delete("eip", eip_uuid)
