"""Distributed EIP (ZStack 1.2's flat network provider): a namespace per EIP on the VM's host.

The namespace ``eip-<uuid>`` has two veths: ``public`` in the public bridge carrying the
EIP (vip), and ``private`` in the VM's bridge carrying the VM's gateway IP. It forwards
(``ip_forward=1``), routes by default to the public gateway, and NATs: DNAT vip -> nicIp,
SNAT nicIp -> vip. No virtual router VM is involved and an EIP moves with its VM (delete
on the old host, apply on the new).

The gateway IP usually belongs to a real router on the VM's L2 as well, so the namespace
must be heard by its VM only. ebtables on the host make sure of it (chains ``ZE*-<hash>``,
see :func:`ebtables_rules`):

- ``arpreply``: the VM's ARP for its gateway is answered with the namespace's MAC, on the
  bridge, before the request floods anywhere;
- the private veth reaches only the VM's port, and only the VM's port reaches it (not
  other VMs, not the host itself): without this (missing from the classic design)
  the namespace's ARP requests, sent from the gateway IP, overwrite other
  VMs' gateway entry, it answers their gateway ARP, and they could route through it.

Inside the namespace ``arp_ignore=1`` keeps each side from answering ARP for the other
side's address, and IPv6 is off, so nothing but the EIP's own traffic leaves it.

Names derive from the uuid, so ``delete`` needs nothing else and a restarted agent finds
everything: links ``zep<hash>`` (public) and ``zev<hash>`` (VM side) on the host, and
MACs that are the same wherever the EIP lands (a moved VM's gateway entry stays valid);
``apply`` announces both addresses with a gratuitous ARP so the public L2 (switches,
routers, clients) follows a moved EIP at once. Every step converges and says whether it
changed anything, so a repeated apply changes nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
from dataclasses import dataclass

from pyroute2 import IPRoute

from agentlib import shell
from agentlib.errors import AgentError
from agentlib.types import uuid_key
from kvmagent.drivers import ebtables, netns
from kvmagent.models.eip import EipTO

log = logging.getLogger(__name__)

PUBLIC = "public"  # link names inside the namespace
PRIVATE = "private"
SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.arp_ignore": "1",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}


class EipError(AgentError):
    """Making or removing an EIP failed (the message names the step and the reason)."""


@dataclass(frozen=True)
class Chain:
    """An ebtables chain of this EIP's, entered by one jump from ``hook``."""

    table: str
    hook: str
    name: str


@dataclass(frozen=True)
class Names:
    """What an EIP is called on the host; all derived from its uuid."""

    netns: str
    public_outer: str  # port of the public bridge
    private_outer: str  # port of the VM's bridge
    public_mac: str
    gateway_mac: str  # the private veth's: what the VM's gateway IP resolves to
    forward: Chain  # the private veth and the VM's port talk only to each other
    to_host: Chain  # nor does the private veth talk with the host's own bridge port
    from_host: Chain
    arpreply: Chain

    @property
    def chains(self) -> tuple[Chain, ...]:
        return self.forward, self.to_host, self.from_host, self.arpreply


def names(eip_uuid: str) -> Names:
    uid = uuid_key(eip_uuid)
    h = hashlib.sha1(uid.encode()).hexdigest()[:10]
    return Names(f"eip-{uid}", f"zep{h}", f"zev{h}", _mac(uid, PUBLIC), _mac(uid, PRIVATE),
                 Chain("filter", "FORWARD", f"ZE-{h}"), Chain("filter", "INPUT", f"ZEI-{h}"),
                 Chain("filter", "OUTPUT", f"ZEO-{h}"), Chain("nat", "PREROUTING", f"ZE-{h}"))


def _mac(uid: str, side: str) -> str:
    """A locally administered unicast MAC, stable for this EIP and side."""
    tail = hashlib.sha1(f"{uid}/{side}".encode()).digest()[:5]
    return ":".join(f"{b:02x}" for b in (0x02, *tail))


def ebtables_rules(n: Names, eip: EipTO) -> dict[Chain, list[str]]:
    """Each chain's rules, as ``ebtables -L`` prints them. The host's own port on the VM's
    bridge is cut off too: a host whose address is on the VM network would otherwise
    have its gateway entry overwritten as well."""
    return {
        n.forward: [f"-i {n.private_outer} -o ! {eip.nic_name} -j DROP",
                    f"-i ! {eip.nic_name} -o {n.private_outer} -j DROP"],
        n.to_host: [f"-i {n.private_outer} -j DROP"],
        n.from_host: [f"-o {n.private_outer} -j DROP"],
        n.arpreply: [f"-p ARP -i {eip.nic_name} --arp-op Request --arp-ip-dst "
                     f"{eip.nic_gateway} -j arpreply --arpreply-mac {n.gateway_mac}"],
    }


def nat_rules(eip: EipTO) -> list[str]:
    """The namespace's iptables nat rules, as ``iptables-save`` prints them."""
    return [f"-A PREROUTING -d {eip.vip}/32 -j DNAT --to-destination {eip.nic_ip}",
            f"-A POSTROUTING -s {eip.nic_ip}/32 -j SNAT --to-source {eip.vip}"]


def apply(eip: EipTO) -> bool:
    """Make the EIP as ``eip`` says (the caller holds ``eip:<uuid>``); True if anything
    changed. A new namespace that fails half-way is removed again."""
    n = names(eip.eip_uuid)
    created = netns.ensure(n.netns)
    try:
        changed = _converge(n, eip) or created
    except BaseException:
        if created:
            delete(eip.eip_uuid)
        raise
    if changed:
        _announce(n.netns, PUBLIC, n.public_mac, eip.vip)
        _announce(n.netns, PRIVATE, n.gateway_mac, eip.nic_gateway)
    return changed


def delete(eip_uuid: str) -> bool:
    """Links, namespace and rules all gone (the rules last: the namespace is never on the
    VM's bridge without them); True if there was anything to remove."""
    n = names(eip_uuid)
    found = False
    for link in (n.public_outer, n.private_outer):
        if netns.link_exists(link):
            netns.delete_link(link)
            found = True
    if netns.exists(n.netns):
        found = True
    netns.delete(n.netns)
    for c in n.chains:
        if ebtables.rules(c.name, c.table) is not None:
            _ebtables(eip_uuid, ebtables.delete_chain, c.name, c.hook, c.table)
            found = True
    return found


def _converge(n: Names, eip: EipTO) -> bool:
    """Rules first (they name links that need not exist yet), so the namespace is never
    on the VM's bridge unisolated."""
    changed = _ensure_sysctls(n.netns)
    for c, rules in ebtables_rules(n, eip).items():
        changed |= _ebtables(eip.eip_uuid, ebtables.ensure_chain, c.name, rules, c.hook,
                             c.table)
    changed |= netns.ensure_veth(n.public_outer, PUBLIC, n.netns, eip.public_bridge_name)
    changed |= netns.ensure_veth(n.private_outer, PRIVATE, n.netns, eip.vm_bridge_name)
    vip = ipaddress.IPv4Interface(f"{eip.vip}/{eip.vip_netmask}")
    gateway = ipaddress.IPv4Interface(f"{eip.nic_gateway}/{eip.nic_netmask}")
    with netns.inside(n.netns) as ipr:
        changed |= _ensure_link(ipr, n.netns, PUBLIC, n.public_mac, vip)
        changed |= _ensure_link(ipr, n.netns, PRIVATE, n.gateway_mac, gateway)
        changed |= _ensure_default_route(ipr, n.netns, eip.vip_gateway)
    return _ensure_nat(n.netns, nat_rules(eip)) or changed


def _ebtables(eip_uuid: str, fn, *args):
    try:
        return fn(*args)
    except ebtables.EbtablesError as exc:
        raise EipError(f"EIP {eip_uuid}: {exc}") from None


# -- inside the namespace ---------------------------------------------------------------
def _ensure_link(ipr: IPRoute, ns: str, ifname: str, mac: str,
                 address: ipaddress.IPv4Interface) -> bool:
    """``ifname`` with MAC ``mac`` and ``address`` as its only IPv4 address."""
    changed = False
    index = netns.link_index(ipr, ifname, ns)
    if ipr.get_links(index)[0].get("IFLA_ADDRESS") != mac:
        netns.call(f"set the MAC of {ifname} in {ns}", ipr.link, "set", index=index,
                   address=mac)
        changed = True
    have = {ipaddress.IPv4Interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
            for a in ipr.get_addr(index=index, family=socket.AF_INET)}
    for old in have - {address}:
        netns.call(f"remove {old} from {ifname} in {ns}", ipr.addr, "del", index=index,
                   address=str(old.ip), prefixlen=old.network.prefixlen)
        changed = True
    if address not in have:
        netns.call(f"add {address} to {ifname} in {ns}", ipr.addr, "add", index=index,
                   address=str(address.ip), prefixlen=address.network.prefixlen)
        changed = True
    return changed


def _ensure_default_route(ipr: IPRoute, ns: str, gateway: str) -> bool:
    routes = ipr.get_default_routes(family=socket.AF_INET)
    if [r.get("RTA_GATEWAY") for r in routes] == [gateway]:
        return False
    netns.call(f"route {ns} by default via {gateway}", ipr.route, "replace",
               dst="0.0.0.0/0", gateway=gateway)
    return True


def _ensure_sysctls(ns: str) -> bool:
    current = _nsenter(ns, ["sysctl", "-n", *SYSCTLS]).stdout.split()
    if current == list(SYSCTLS.values()):
        return False
    _nsenter(ns, ["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in SYSCTLS.items())])
    return True


def _ensure_nat(ns: str, rules: list[str]) -> bool:
    """The namespace's nat table holding exactly ``rules`` (it is ours alone)."""
    saved = _nsenter(ns, ["iptables-save", "-t", "nat"]).stdout.splitlines()
    if [line for line in saved if line.startswith("-A ")] == rules:
        return False
    chains = [f":{c} ACCEPT [0:0]" for c in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")]
    _nsenter(ns, ["iptables-restore"], input="\n".join(["*nat", *chains, *rules, "COMMIT", ""]))
    return True


def _announce(ns: str, ifname: str, mac: str, ip: str) -> None:
    """A gratuitous ARP for ``ip`` at ``mac`` out of ``ifname``: neighbours update their
    entry and bridges their forwarding table. Best effort: it only speeds things up."""
    hw, addr = bytes.fromhex(mac.replace(":", "")), socket.inet_aton(ip)
    frame = (b"\xff" * 6 + hw + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01"
             + hw + addr + b"\x00" * 6 + addr)
    try:
        sock = netns.socket_in(ns, socket.AF_PACKET, socket.SOCK_RAW)
        with sock:
            sock.bind((ifname, 0))
            sock.send(frame)
    except OSError as exc:
        log.warning("gratuitous ARP for %s in %s failed: %s", ip, ns, exc)


def _nsenter(ns: str, argv: list[str], input: str | None = None) -> shell.Result:
    try:
        return shell.run(netns.nsenter(ns, argv), input=input)
    except shell.CommandFailed as exc:
        raise EipError(str(exc)) from None
