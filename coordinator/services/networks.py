"""L2 and L3 networks, IP ranges, DNS, network services; and what a VM NIC needs on its
host from the flat network provider (bridge, DHCP entry, user data).

Bridges are named as ZStack names them (``br_<nic>``, ``br_<nic>_<vlan>``) and each L3's
DHCP namespace ``<bridge>_<l3 uuid>``; every host uses the same DHCP server IP for an L3
(allocated from the L3's range once, purpose DHCP).
"""

from __future__ import annotations

import ipaddress

from coordinator import ipam
from coordinator.api import ApiError
from coordinator.clients import kvmagent
from coordinator.clients.endpoint import Call
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.repos.networks import L2Clusters
from coordinator.services.hosts import kvm
from coordinator.services.lookup import require

FLAT = "Flat"
FLAT_PROVIDER_UUID = "d0a5c1f7e3a94c2c9c4b0f7f6f1a5e01"  # fixed: the one provider here
SERVICE_TYPES = ("DHCP", "DNS", "Userdata", "Eip")


def bridge_name(l2: dict) -> str:
    nic = l2["physical_interface"]
    return f"br_{nic}_{l2['vlan']}" if l2["type"] == "L2VlanNetwork" else f"br_{nic}"


def tap_name(nic: dict) -> str:
    """A VM NIC's tap on its host, named after the NIC (``ip link`` tells whose it is)."""
    return f"zv{nic['uuid'][:12]}"


def namespace_name(bridge: str, l3_uuid: str) -> str:
    return f"{bridge}_{l3_uuid}"


def ensure_bridge(ctx: Context, l2: dict, host: dict) -> str:
    """The L2's bridge on the host (idempotent on the agent)."""
    bridge = bridge_name(l2)
    agent = kvm(ctx, host)
    if l2["type"] == "L2VlanNetwork":
        agent.create_vlan_bridge(physical_interface_name=l2["physical_interface"],
                                 bridge_name=bridge, vlan=l2["vlan"])
    else:
        agent.create_bridge(physical_interface_name=l2["physical_interface"],
                            bridge_name=bridge)
    return bridge


def dhcp_server_ip(ctx: Context, l3_uuid: str) -> dict:
    """The L3's DHCP server address (the same on every host), allocated once."""
    with ctx.db.tx():
        rows = ctx.db.find("used_ip", "l3_network_uuid = ? AND purpose = 'DHCP'", (l3_uuid,))
        return rows[0] if rows else ipam.allocate(ctx.db, l3_uuid, l3_uuid, "DHCP")


def has_service(l3: dict, kind: str) -> bool:
    return any(s["type"] == kind for s in l3.get("services") or [])


def apply_nic(ctx: Context, host: dict, vm: dict, nic: dict, default: bool,
              userdata: str | None, ssh_key: str | None) -> None:
    """Bridge, DHCP entry and user data of one VM NIC on the VM's host."""
    l3 = ctx.db.get("l3_network", nic["l3_network_uuid"])
    l2 = ctx.db.get("l2_network", l3["l2_network_uuid"])
    agent = kvm(ctx, host)
    bridge = ensure_bridge(ctx, l2, host)
    if not has_service(l3, "DHCP"):
        return
    server = dhcp_server_ip(ctx, l3["uuid"])
    ns = namespace_name(bridge, l3["uuid"])
    agent.prepare_dhcp(bridge_name=bridge, namespace_name=ns, dhcp_server_ip=server["ip"],
                       dhcp_netmask=server["netmask"],
                       physical_interface=l2["physical_interface"])
    agent.apply_dhcp(dhcp=[dict(
        namespace_name=ns, bridge_name=bridge, mac=nic["mac"], ip=nic["ip"],
        netmask=nic["netmask"], gateway=nic["gateway"], dns=l3.get("dns") or [],
        dns_domain=l3.get("dns_domain") or "", hostname=_hostname(vm["name"]),
        is_default_l3_network=default)])
    if has_service(l3, "Userdata"):
        agent.apply_userdata(userdata=dict(
            bridge_name=bridge, namespace_name=ns, vm_ip=nic["ip"], vm_mac=nic["mac"],
            dhcp_server_ip=server["ip"], userdata=userdata, ssh_key=ssh_key,
            metadata=dict(vm_uuid=vm["uuid"], vm_hostname=_hostname(vm["name"]))))


def release_commands(ctx: Context, nic: dict) -> list[Call]:
    """The host commands that undo :func:`apply_nic` (absent entries are fine on the
    agent)."""
    l3 = ctx.db.get("l3_network", nic["l3_network_uuid"])
    l2 = ctx.db.get("l2_network", l3["l2_network_uuid"])
    ns = namespace_name(bridge_name(l2), l3["uuid"])
    commands = []
    if has_service(l3, "Userdata"):
        commands.append(kvmagent.RELEASE_USERDATA.call(namespace_name=ns, vm_ip=nic["ip"]))
    if has_service(l3, "DHCP"):
        commands.append(kvmagent.RELEASE_DHCP.call(dhcp=[dict(namespace_name=ns,
                                                               mac=nic["mac"])]))
    return commands


def _hostname(name: str) -> str:
    """A VM name as a DNS label ('' if nothing usable is left)."""
    label = "".join(c if c.isalnum() or c == "-" else "-" for c in name.lower())
    return label.strip("-")[:63]


def create_l2(ctx: Context, uuid: str, zone_uuid: str, name: str, description: str,
              kind: str, physical_interface: str, vlan: int | None) -> None:
    require(ctx, "zone", zone_uuid, "zoneUuid")
    ctx.db.insert("l2_network", {"uuid": uuid, "name": name, "zone_uuid": zone_uuid,
                                 "description": description, "type": kind,
                                 "physical_interface": physical_interface, "vlan": vlan})


def attach_l2(ctx: Context, l2_uuid: str, cluster_uuid: str) -> None:
    """The L2's bridge on every connected host of the cluster, then attached."""
    l2 = require(ctx, "l2_network", l2_uuid, "l2NetworkUuid")
    cluster = require(ctx, "cluster", cluster_uuid, "clusterUuid")
    if cluster["zone_uuid"] != l2["zone_uuid"]:
        raise ApiError("clusterUuid: the cluster is in another zone than the L2 network")
    for host in ctx.db.find("host", "cluster_uuid = ? AND status = 'Connected'",
                            (cluster_uuid,)):
        try:
            ensure_bridge(ctx, l2, host)
        except Exception as exc:  # noqa: BLE001 - said with the host's name
            raise ApiError(f"host {host['name']}: cannot create bridge "
                           f"{bridge_name(l2)}: {exc}") from None
    L2Clusters(ctx.db).attach(l2_uuid, cluster_uuid)


def detach_l2(ctx: Context, l2_uuid: str, cluster_uuid: str) -> None:
    L2Clusters(ctx.db).detach(l2_uuid, cluster_uuid)


def delete_l2(ctx: Context, uuid: str) -> None:
    require(ctx, "l2_network", uuid, "uuid")
    if ctx.db.find("l3_network", "l2_network_uuid = ?", (uuid,)):
        raise ApiError(f"uuid: L2 network {uuid} still has L3 networks")
    ctx.db.delete("l2_network", uuid)


def create_l3(ctx: Context, uuid: str, l2_uuid: str, name: str, description: str,
              kind: str, system: bool, dns_domain: str) -> None:
    l2 = require(ctx, "l2_network", l2_uuid, "l2NetworkUuid")
    ctx.db.insert("l3_network", {"uuid": uuid, "name": name, "description": description,
                                 "zone_uuid": l2["zone_uuid"], "l2_network_uuid": l2["uuid"],
                                 "type": kind, "system": int(system),
                                 "dns_domain": dns_domain})


def delete_l3(ctx: Context, uuid: str) -> None:
    require(ctx, "l3_network", uuid, "uuid")
    if ctx.db.find("vm_nic", "l3_network_uuid = ?", (uuid,)):
        raise ApiError(f"uuid: L3 network {uuid} still has VM NICs")
    ctx.db.delete("l3_network", uuid)


def add_range(ctx: Context, l3_uuid: str, name: str, start: str, end: str,
              netmask: str, gateway: str, description: str, uuid: str | None) -> str:
    """A range of the L3's addresses, checked against the others; its uuid."""
    require(ctx, "l3_network", l3_uuid, "l3NetworkUuid")
    try:
        net = ipaddress.IPv4Network(f"{gateway}/{netmask}", strict=False)
    except ValueError as exc:
        raise ApiError(f"netmask: {exc}") from None
    for field, ip in (("startIp", start), ("endIp", end)):
        if ipaddress.IPv4Address(ip) not in net:
            raise ApiError(f"{field}: {ip} is not in {net} (gateway/netmask)")
    if ipam.ip_int(start) > ipam.ip_int(end):
        raise ApiError(f"endIp: {end} is before startIp {start}")
    lo, hi = ipam.ip_int(start), ipam.ip_int(end)
    for other in ctx.db.find("ip_range", "l3_network_uuid = ?", (l3_uuid,)):
        if lo <= ipam.ip_int(other["end_ip"]) and ipam.ip_int(other["start_ip"]) <= hi:
            raise ApiError(f"startIp: {start}-{end} overlaps IP range {other['name']} "
                           f"({other['start_ip']}-{other['end_ip']})")
    uuid = uuid or new_uuid()
    ctx.db.insert("ip_range", {"uuid": uuid, "name": name, "description": description,
                               "l3_network_uuid": l3_uuid, "start_ip": start,
                               "end_ip": end, "netmask": str(net.netmask),
                               "gateway": gateway, "network_cidr": str(net)})
    return uuid


def add_range_by_cidr(ctx: Context, l3_uuid: str, name: str, network_cidr: str,
                      description: str, uuid: str | None) -> str:
    """A whole network: gateway = first address, the rest for VMs (ZStack's rule)."""
    try:
        net = ipaddress.IPv4Network(network_cidr)
    except ValueError as exc:
        raise ApiError(f"networkCidr: {exc}") from None
    hosts = list(net.hosts())
    if len(hosts) < 3:
        raise ApiError(f"networkCidr: {net} is too small")
    return add_range(ctx, l3_uuid, name, str(hosts[1]), str(hosts[-1]), str(net.netmask),
                     str(hosts[0]), description, uuid)


def delete_range(ctx: Context, uuid: str) -> None:
    require(ctx, "ip_range", uuid, "uuid")
    if ctx.db.find("used_ip", "ip_range_uuid = ? AND purpose = 'VmNic'", (uuid,)):
        raise ApiError(f"uuid: IP range {uuid} has addresses in use")
    ctx.db.delete("ip_range", uuid)


def add_dns(ctx: Context, l3_uuid: str, dns_ip: str) -> None:
    l3 = require(ctx, "l3_network", l3_uuid, "l3NetworkUuid")
    dns = list(l3.get("dns") or [])
    if dns_ip not in dns:
        ctx.db.update("l3_network", l3["uuid"], dns=[*dns, dns_ip])


def attach_services(ctx: Context, l3_uuid: str, types: list[str]) -> None:
    """Services of the flat provider on the L3 (those it has already stay)."""
    l3 = require(ctx, "l3_network", l3_uuid, "l3NetworkUuid")
    services = list(l3.get("services") or [])
    for t in types:
        entry = {"provider": FLAT, "providerUuid": FLAT_PROVIDER_UUID, "type": t}
        if entry not in services:
            services.append(entry)
    ctx.db.update("l3_network", l3["uuid"], services=services)
