"""L2 networks on a KVM host: Linux bridges on a physical NIC, a VLAN or a VXLAN device.

Every operation reads the host's links through netlink, *plans* the steps that take them
to the wanted state (pure functions, unit-tested without root) and applies them, so a
repeated command plans nothing and changes nothing.

A bridge's uplink (the one port that connects it to the outside: a NIC, ``eth1.10``,
``vxlan42``) is recorded in the bridge's ifalias (``zfleet-l2 uplink=eth1``): other ports
(VM taps, DHCP and EIP veths) come and go, and only the alias tells, after a restart,
which port must not be replaced by another uplink — bridging two uplinks joins two L2s.

A novlan bridge takes over its NIC's IPv4 addresses and routes (as ZStack does), so a
management NIC keeps working once it is bridged.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from agentlib.errors import AgentError
from kvmagent.drivers import netns

log = logging.getLogger(__name__)

MAX_IFNAME = 15
ALIAS_PREFIX = "zfleet-l2 uplink="
FLOOD_MAC = "00:00:00:00:00:00"
"""A VXLAN fdb entry for the all-zero MAC: where broadcast/unknown frames are sent."""
RTPROT_KERNEL = 2  # routes the kernel made for an address: they follow the address
MAIN_TABLE = 254
IFF_UP = 1


class L2Error(AgentError):
    """An L2 command cannot be done as asked (the message says which link and why)."""


# -- what the host has ------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """One network interface as far as L2 planning cares."""

    name: str
    kind: str | None = None  # None: a physical NIC (no rtnl link kind)
    master: str | None = None  # the bridge it is a port of
    up: bool = False
    alias: str | None = None
    parent: str | None = None  # vlan: the interface it tags on
    vlan_id: int | None = None
    vni: int | None = None
    local: str | None = None  # vxlan: the VTEP address
    port: int | None = None  # vxlan: UDP destination port
    learning: bool | None = None  # vxlan

    @property
    def uplink(self) -> str | None:
        """A bridge's recorded uplink (from its alias), if zfleet made or adopted it."""
        if self.alias and self.alias.startswith(ALIAS_PREFIX):
            return self.alias[len(ALIAS_PREFIX):]
        return None


@dataclass(frozen=True)
class Addr:
    address: str
    prefixlen: int
    broadcast: str | None = None


@dataclass(frozen=True)
class Route:
    """A main-table IPv4 route on one interface (not one the kernel made for an address)."""

    dst: str
    dst_len: int
    gateway: str | None = None
    priority: int | None = None
    prefsrc: str | None = None
    proto: int = 4  # static
    scope: int = 0
    type: int = 1  # unicast


@dataclass(frozen=True)
class Step:
    """One netlink change to ``link``; the args ``link`` (a VLAN's parent) and ``master``
    name links and are resolved to indices only when the step runs."""

    action: str  # link_add, link_set, link_del, addr_add, addr_del, route_replace, fdb_*
    link: str
    args: dict = field(default_factory=dict)

    def __str__(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.action} {self.link}" + (f" {args}" if args else "")


# -- names and device arguments ----------------------------------------------------------


def vlan_device_name(iface: str, vlan: int) -> str:
    """``<iface>.<vlan>``; when that exceeds 15 characters the interface part is cut and
    completed with a hash of the full name, so long names stay distinct."""
    suffix = f".{vlan}"
    name = iface + suffix
    if len(name) <= MAX_IFNAME:
        return name
    room = MAX_IFNAME - len(suffix)
    digest = hashlib.sha1(iface.encode()).hexdigest()[:4]
    return iface[: room - len(digest)] + digest + suffix


def vxlan_device_name(vni: int) -> str:
    return f"vxlan{vni}"  # vni <= 16777215: at most 13 characters


def vlan_device_args(iface: str, vlan: int) -> dict:
    return {"kind": "vlan", "link": iface, "vlan_id": vlan}


def vxlan_device_args(vni: int, local: str, port: int) -> dict:
    """No learning: peers come only from the static fdb the coordinator sends."""
    return {"kind": "vxlan", "vxlan_id": vni, "vxlan_local": local, "vxlan_port": port,
            "vxlan_learning": 0}


def alias_for(uplink: str) -> str:
    return ALIAS_PREFIX + uplink


# -- plans (pure) -------------------------------------------------------------------------


def _require(links: dict[str, Link], name: str, what: str) -> Link:
    if name not in links:
        raise L2Error(f"{what} {name} does not exist on this host")
    return links[name]


def plan_vlan_device(links: dict[str, Link], iface: str, vlan: int) -> list[Step]:
    """Create ``<iface>.<vlan>`` unless it is already that VLAN on that interface."""
    _require(links, iface, "physical interface")
    name = vlan_device_name(iface, vlan)
    found = links.get(name)
    if found is None:
        return [Step("link_add", name, vlan_device_args(iface, vlan))]
    if (found.kind, found.parent, found.vlan_id) != ("vlan", iface, vlan):
        raise L2Error(f"link {name} exists but is not VLAN {vlan} on {iface} "
                      f"(it is a {found.kind or 'physical'} link)")
    return []


def plan_vxlan_device(links: dict[str, Link], vni: int, local: str, port: int) -> list[Step]:
    """Create ``vxlan<vni>``; one with other parameters (a new VTEP address) is replaced."""
    name = vxlan_device_name(vni)
    found = links.get(name)
    if found is None:
        return [Step("link_add", name, vxlan_device_args(vni, local, port))]
    if found.kind != "vxlan":
        raise L2Error(f"link {name} exists and is a {found.kind or 'physical'} link, "
                      "not a VXLAN device")
    if (found.vni, found.local, found.port, found.learning) != (vni, local, port, False):
        return [Step("link_del", name), Step("link_add", name,
                                             vxlan_device_args(vni, local, port))]
    return []


def plan_bridge(links: dict[str, Link], bridge: str, uplink: str) -> list[Step]:
    """Bridge ``uplink`` into ``bridge`` (created if missing), both up.

    Refused: a link named ``bridge`` that is no bridge, an uplink already in another
    bridge, and a bridge whose uplink is another link still plugged into it.
    """
    port = _require(links, uplink, "interface")
    if port.kind == "bridge":
        raise L2Error(f"{uplink} is a bridge, not an interface that can be bridged")
    if port.master and port.master != bridge:
        raise L2Error(f"{uplink} is already a port of bridge {port.master}; it cannot "
                      f"also be bridged into {bridge}")
    steps: list[Step] = []
    found = links.get(bridge)
    if found is None:
        steps.append(Step("link_add", bridge, {"kind": "bridge"}))
    elif found.kind != "bridge":
        raise L2Error(f"link {bridge} exists and is a {found.kind or 'physical'} link, "
                      "not a bridge")
    else:
        _check_uplink_free(links, found, uplink)
    if found is None or found.alias != alias_for(uplink):
        steps.append(Step("link_set", bridge, {"ifalias": alias_for(uplink)}))
    if port.master != bridge:
        steps.append(Step("link_set", uplink, {"master": bridge}))
    if found is None or not found.up:
        steps.append(Step("link_set", bridge, {"state": "up"}))
    if not port.up:
        steps.append(Step("link_set", uplink, {"state": "up"}))
    return steps


def _check_uplink_free(links: dict[str, Link], bridge: Link, uplink: str) -> None:
    ports = [ln for ln in links.values() if ln.master == bridge.name and ln.name != uplink]
    recorded = bridge.uplink
    if recorded is not None:
        others = [ln.name for ln in ports if ln.name == recorded]
    else:  # not made by zfleet: any port but a VM tap may be an uplink
        others = [ln.name for ln in ports if ln.kind != "tun"]
    if others:
        raise L2Error(f"bridge {bridge.name} already bridges {', '.join(others)}; "
                      f"refusing to also bridge {uplink} into it (that would join two L2s)")


def route_args(route: Route) -> dict:
    args = {"dst": route.dst, "dst_len": route.dst_len, "table": MAIN_TABLE,
            "proto": route.proto, "scope": route.scope, "type": route.type}
    for key in ("gateway", "priority", "prefsrc"):
        if getattr(route, key) is not None:
            args[key] = getattr(route, key)
    return args


def addr_args(addr: Addr) -> dict:
    args = {"address": addr.address, "prefixlen": addr.prefixlen}
    if addr.broadcast:
        args["broadcast"] = addr.broadcast
    return args


def plan_address_move(uplink: str, bridge: str, uplink_addrs: list[Addr],
                      bridge_addrs: list[Addr], uplink_routes: list[Route]) -> list[Step]:
    """Move the uplink's IPv4 addresses and routes to the bridge: add on the bridge,
    re-point the routes, then drop them from the uplink, so the host stays reachable."""
    have = {(a.address, a.prefixlen) for a in bridge_addrs}
    steps = [Step("addr_add", bridge, addr_args(a)) for a in uplink_addrs
             if (a.address, a.prefixlen) not in have]
    steps += [Step("route_replace", bridge, route_args(r)) for r in uplink_routes]
    steps += [Step("addr_del", uplink, addr_args(a)) for a in uplink_addrs]
    return steps


def plan_fdb(device: str, current: Iterable[str], peers: Iterable[str],
             local: str | None) -> list[Step]:
    """Flood entries of ``device`` converged to exactly ``peers`` (never the local VTEP,
    which would loop every broadcast back into the bridge)."""
    wanted = set(peers) - {local}
    have = set(current)
    return ([Step("fdb_append", device, {"lladdr": FLOOD_MAC, "dst": ip})
             for ip in sorted(wanted - have, key=ipaddress.IPv4Address)]
            + [Step("fdb_del", device, {"lladdr": FLOOD_MAC, "dst": ip})
               for ip in sorted(have - wanted, key=ipaddress.IPv4Address)])


def plan_delete(links: dict[str, Link], bridge: str, kind: str,
                devices: Iterable[str] = ()) -> list[Step]:
    """Delete ``bridge`` and its uplink devices of ``kind`` (vlan or vxlan), plus
    ``devices`` if they are of that kind. A bridge whose uplink is of another kind (a
    NIC) is refused: deleting it would cut the host off that network."""
    found = links.get(bridge)
    names = [d for d in devices if d in links and links[d].kind == kind]
    if found is not None:
        if found.kind != "bridge":
            raise L2Error(f"link {bridge} is a {found.kind or 'physical'} link, not a bridge")
        up = links.get(found.uplink or "")
        if up is not None and up.master == bridge and up.kind != kind:
            raise L2Error(f"bridge {bridge} bridges {up.name}, a {up.kind or 'physical'} "
                          f"link, not a {kind} device; not deleting it")
        names += [ln.name for ln in links.values() if ln.master == bridge and ln.kind == kind]
    steps = [Step("link_del", bridge)] if found is not None else []
    return steps + [Step("link_del", name) for name in dict.fromkeys(names)]


# -- netlink --------------------------------------------------------------------------------


def read_links(ipr: IPRoute) -> dict[str, Link]:
    raw = list(ipr.get_links())
    names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in raw}
    links = {}
    for m in raw:
        info = m.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info else None
        data = info.get_attr("IFLA_INFO_DATA") if info else None
        extra: dict = {}
        if kind == "vlan" and data is not None:
            extra = {"parent": names.get(m.get_attr("IFLA_LINK")),
                     "vlan_id": data.get_attr("IFLA_VLAN_ID")}
        elif kind == "vxlan" and data is not None:
            extra = {"vni": data.get_attr("IFLA_VXLAN_ID"),
                     "local": data.get_attr("IFLA_VXLAN_LOCAL"),
                     "port": data.get_attr("IFLA_VXLAN_PORT"),
                     "learning": bool(data.get_attr("IFLA_VXLAN_LEARNING"))}
        name = m.get_attr("IFLA_IFNAME")
        links[name] = Link(name, kind, names.get(m.get_attr("IFLA_MASTER")),
                           bool(m["flags"] & IFF_UP), m.get_attr("IFLA_IFALIAS"), **extra)
    return links


def read_addrs(ipr: IPRoute, name: str | None = None) -> list[Addr]:
    """IPv4 addresses of ``name`` (of every interface if None), primaries first."""
    index = netns.link_index(ipr, name) if name else None
    return [Addr(m.get_attr("IFA_ADDRESS"), m["prefixlen"], m.get_attr("IFA_BROADCAST"))
            for m in ipr.get_addr(family=socket.AF_INET)
            if index is None or m["index"] == index]


def read_routes(ipr: IPRoute, name: str) -> list[Route]:
    index = netns.link_index(ipr, name)
    return [Route(m.get_attr("RTA_DST") or "0.0.0.0", m["dst_len"], m.get_attr("RTA_GATEWAY"),
                  m.get_attr("RTA_PRIORITY"), m.get_attr("RTA_PREFSRC"), m["proto"],
                  m["scope"], m["type"])
            for m in ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE)
            if m.get_attr("RTA_OIF") == index and m["proto"] != RTPROT_KERNEL]


def read_flood_peers(ipr: IPRoute, device: str) -> set[str]:
    index = netns.link_index(ipr, device)
    return {m.get_attr("NDA_DST") for m in ipr.fdb("dump", ifindex=index)
            if m["ifindex"] == index and m.get_attr("NDA_LLADDR") == FLOOD_MAC
            and m.get_attr("NDA_DST")}


def apply(ipr: IPRoute, steps: list[Step]) -> list[Step]:
    """Run ``steps`` in order; a refused step becomes an :class:`L2Error` saying which."""
    for step in steps:
        try:
            _run(ipr, step)
        except NetlinkError as exc:
            raise explain(step, exc) from None
        log.info("l2: %s", step)
    return steps


def _run(ipr: IPRoute, step: Step) -> None:
    args = dict(step.args)
    for ref in ("link", "master"):
        if ref in args:
            args[ref] = netns.link_index(ipr, args[ref])
    if step.action == "link_add":
        ipr.link("add", ifname=step.link, **args)
        return
    index = netns.link_index(ipr, step.link)
    if step.action == "link_set":
        ipr.link("set", index=index, **args)
    elif step.action == "link_del":
        ipr.link("del", index=index)
    elif step.action in ("addr_add", "addr_del"):
        ipr.addr(step.action[5:], index=index, **args)
    elif step.action == "route_replace":
        ipr.route("replace", oif=index, **args)
    elif step.action in ("fdb_append", "fdb_del"):
        ipr.fdb(step.action[4:], ifindex=index, **args)
    else:
        raise ValueError(f"unknown step {step}")


def explain(step: Step, exc: NetlinkError) -> L2Error:
    """The failure of ``step`` in operator terms (a missing kernel feature named as such)."""
    reason = os.strerror(exc.code) if exc.code else str(exc)
    vlan = step.action == "link_add" and step.args.get("kind") == "vlan"
    if vlan and exc.code == errno.EOPNOTSUPP:  # no "vlan" link kind registered
        return L2Error("this host's kernel has no 802.1Q VLAN support (module 8021q): "
                       f"cannot create VLAN device {step.link} on {step.args['link']}: "
                       f"{reason}")
    return L2Error(f"{step} failed: {reason}")


# -- operations ------------------------------------------------------------------------------


def missing_interfaces(names: Iterable[str]) -> list[str]:
    with netns.host() as ipr:
        return [n for n in dict.fromkeys(names) if not ipr.link_lookup(ifname=n)]


def check_bridge(bridge: str, port: str) -> None:
    """Raise unless ``bridge`` exists, is a bridge, and ``port`` is plugged into it."""
    with netns.host() as ipr:
        links = read_links(ipr)
    found = _require(links, bridge, "bridge")
    if found.kind != "bridge":
        raise L2Error(f"link {bridge} is a {found.kind or 'physical'} link, not a bridge")
    master = _require(links, port, "interface").master
    if master != bridge:
        where = f"a port of {master}" if master else "not bridged"
        raise L2Error(f"{port} is not a port of bridge {bridge} (it is {where})")


def create_novlan_bridge(bridge: str, iface: str) -> list[Step]:
    """Bridge the NIC ``iface``, moving its addresses and routes onto the bridge."""
    with netns.host() as ipr:
        done = apply(ipr, plan_bridge(read_links(ipr), bridge, iface))
        return done + apply(ipr, plan_address_move(
            iface, bridge, read_addrs(ipr, iface), read_addrs(ipr, bridge),
            read_routes(ipr, iface)))


def create_vlan_bridge(bridge: str, iface: str, vlan: int) -> list[Step]:
    with netns.host() as ipr:
        done = apply(ipr, plan_vlan_device(read_links(ipr), iface, vlan))
        return done + apply(ipr, plan_bridge(read_links(ipr), bridge,
                                             vlan_device_name(iface, vlan)))


def create_vxlan_bridge(bridge: str, vni: int, local: str, port: int,
                        peers: Iterable[str]) -> list[Step]:
    with netns.host() as ipr:
        if local not in {a.address for a in read_addrs(ipr)}:
            raise L2Error(f"localIp {local} is not an address of this host: the VTEP "
                          "address must be one of its interfaces' IPv4 addresses")
        device = vxlan_device_name(vni)
        done = apply(ipr, plan_vxlan_device(read_links(ipr), vni, local, port))
        done += apply(ipr, plan_bridge(read_links(ipr), bridge, device))
        return done + apply(ipr, plan_fdb(device, read_flood_peers(ipr, device), peers,
                                          local))


def populate_fdb(vni: int, peers: Iterable[str]) -> list[Step]:
    device = vxlan_device_name(vni)
    with netns.host() as ipr:
        found = read_links(ipr).get(device)
        if found is None or found.kind != "vxlan":
            raise L2Error(f"VXLAN device {device} does not exist on this host: create the "
                          f"VXLAN bridge for vni {vni} first")
        return apply(ipr, plan_fdb(device, read_flood_peers(ipr, device), peers,
                                   found.local))


def delete_bridge(bridge: str, kind: str, devices: Iterable[str] = ()) -> list[Step]:
    with netns.host() as ipr:
        return apply(ipr, plan_delete(read_links(ipr), bridge, kind, devices))
