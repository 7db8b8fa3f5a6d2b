"""Distributed DHCP (ZStack's flat network provider): one namespace per (bridge, L3).

Each DHCP namespace on a host is joined to the L3's bridge by a veth pair and runs its
own dnsmasq; every host uses the same DHCP server IP for an L3, and ebtables rules on the
bridge's uplink keep each host's DHCP (and ARP for the server IP) on that host, so a
host's dnsmasq only ever answers the VMs on that host (without them, measured here, a
VM took a stale address from a neighbour).

Names are derived from the namespace name (ZStack's ``<bridge>_<l3 uuid>``), so they are
stable across restarts and short enough for the kernel: veths ``zdo<hash>`` (host side)
and ``zdi<hash>`` (inside), ebtables chain ``ZD-<hash>``. What a restarted agent needs to
re-adopt its namespaces lives under ``<data dir>/dhcp/<namespace>/``: ``state.json``
(what prepare said, the L3 options), dnsmasq's conf, hosts file, pid file and log.

Callers hold ``netns:<namespace>`` (see :func:`lock_name`) around every call that takes
a namespace name: each step is idempotent, but two steps on one namespace must not
interleave.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from agentlib import jsonfile
from agentlib.errors import AgentError
from agentlib.locks import NamedLocks
from kvmagent.drivers import ebtables, netns
from kvmagent.drivers.bridges import ALIAS_PREFIX as L2_UPLINK_ALIAS
from kvmagent.drivers.dnsmasq import MAX_RELEASES, Dnsmasq, L3Options, Lease
from kvmagent.models.dhcp import DhcpEntry, NamespaceStatus, PrepareDhcpCmd, ip_int

log = logging.getLogger(__name__)

OUTER_PREFIX = "zdo"


def lock_name(namespace: str) -> str:
    return f"netns:{namespace}"


def hold_namespaces(locks: NamedLocks, *namespaces: str):
    """Hold the locks of ``namespaces`` (DHCP and metadata handlers both work in them)."""
    return locks.hold(*(lock_name(n) for n in namespaces))


def names(namespace: str) -> tuple[str, str, str]:
    """(outer veth, inner veth, ebtables chain) of a DHCP namespace."""
    digest = hashlib.sha1(namespace.encode()).hexdigest()[:10]
    return f"{OUTER_PREFIX}{digest}", f"zdi{digest}", f"ZD-{digest}"


@dataclass(frozen=True)
class DhcpNamespace:
    """Where an L3's DHCP server lives on this host, for services that share it: a
    metadata HTTP server can bind inside ``netns`` on ``inner`` (and, like DHCP, must
    not be reached across ``uplink``)."""

    netns: str
    inner: str
    outer: str
    bridge: str
    uplink: str
    server_ip: str
    prefixlen: int


@dataclass
class State:
    """A namespace as prepare made it, plus what the entries taught (persisted)."""

    namespace: str
    bridge: str
    server_ip: str
    netmask: str
    uplink: str
    gateway: str | None = None
    dns: list[str] = field(default_factory=list)
    domain: str = ""
    non_default: list[str] = field(default_factory=list)

    @property
    def server(self) -> str:
        return str(ipaddress.IPv4Interface(f"{self.server_ip}/{self.netmask}"))

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Interface(self.server).network

    @property
    def options(self) -> L3Options:
        return L3Options(self.gateway, tuple(self.dns), self.domain)


def uplink_rules(uplink: str, server_ip: str) -> list[str]:
    """Cut DHCP and ARP for the shared server IP at the uplink, both ways (as
    ``ebtables -L`` prints them)."""
    return [
        f"-p ARP -i {uplink} --arp-ip-dst {server_ip} -j DROP",
        f"-p ARP -o {uplink} --arp-ip-dst {server_ip} -j DROP",
        f"-p ARP -i {uplink} --arp-ip-src {server_ip} -j DROP",
        f"-p ARP -o {uplink} --arp-ip-src {server_ip} -j DROP",
        f"-p IPv4 -i {uplink} --ip-proto udp --ip-sport 67:68 -j DROP",
        f"-p IPv4 -o {uplink} --ip-proto udp --ip-sport 67:68 -j DROP",
    ]


def merge(leases: Iterable[Lease], entries: Iterable[DhcpEntry]) -> dict[str, Lease]:
    """``leases`` with ``entries`` applied, by MAC: an entry replaces its MAC's lease and
    any other MAC's lease of the same IP (the coordinator moved that IP)."""
    by_mac = {lease.mac: lease for lease in leases}
    by_ip = {lease.ip: lease.mac for lease in by_mac.values()}
    for e in entries:
        holder = by_ip.get(e.ip)
        if holder is not None and holder != e.mac:
            del by_mac[holder]
        old = by_mac.get(e.mac)
        if old is not None and by_ip.get(old.ip) == e.mac:
            del by_ip[old.ip]
        by_mac[e.mac] = Lease(e.mac, e.ip, e.hostname)
        by_ip[e.ip] = e.mac
    return by_mac


def learn(state: State, entries: list[DhcpEntry]) -> State:
    """The L3 options (from the last default-L3 entry) and non-default NICs that
    ``entries`` say."""
    non_default = set(state.non_default)
    non_default.difference_update(e.mac for e in entries if e.is_default_l3_network)
    non_default.update(e.mac for e in entries if not e.is_default_l3_network)
    new = replace(state, non_default=sorted(non_default))
    last = next((e for e in reversed(entries) if e.is_default_l3_network), None)
    if last is not None:
        new = replace(new, gateway=last.gateway, dns=list(last.dns), domain=last.dns_domain)
    return new


class FlatDhcp:
    """The DHCP namespaces of this host, their dnsmasqs and ebtables chains."""

    def __init__(self, data_dir: Path):
        self.root = Path(data_dir) / "dhcp"
        self._before_delete: list[Callable[[str], None]] = []

    def before_delete(self, hook: Callable[[str], None]) -> None:
        """Run ``hook(namespace)`` when a namespace is deleted, before it goes: services
        sharing it (the metadata server) must not outlive it."""
        self._before_delete.append(hook)

    # -- lookups ----------------------------------------------------------------------
    def namespaces(self) -> list[str]:
        """Namespaces this agent prepared (from its data dir)."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/state.json"))

    def state(self, namespace: str) -> State | None:
        raw = jsonfile.read(self._dir(namespace) / "state.json")
        return State(**raw) if raw else None

    def dnsmasq(self, namespace: str) -> Dnsmasq:
        return Dnsmasq(self._dir(namespace), namespace)

    def namespace(self, namespace: str) -> DhcpNamespace | None:
        """The DHCP namespace of an L3 (by ZStack's namespace name), if prepared here."""
        st = self.state(namespace)
        if st is None:
            return None
        outer, inner, _ = names(namespace)
        return DhcpNamespace(namespace, inner, outer, st.bridge, st.uplink, st.server_ip,
                             st.network.prefixlen)

    def group(self, entries: Iterable[DhcpEntry], field: str = "dhcp"
              ) -> dict[str, list[DhcpEntry]]:
        """``entries`` by namespace, after checking what the model cannot: each namespace
        is prepared here on the entry's bridge, each IP (and gateway) is in the network it
        serves, no IP is given to two MACs, and the default-L3 entries of one namespace
        agree on its router and DNS. Raises naming the first bad field, before anything
        is written. (A batch has thousands of entries: the per-entry work is kept small.)"""
        groups: dict[str, list[DhcpEntry]] = {}
        nets: dict[str, tuple[State, int, int]] = {}  # namespace -> state, network, mask
        owners: dict[tuple[str, str], str] = {}
        options: dict[str, DhcpEntry] = {}
        for i, e in enumerate(entries):
            ns = e.namespace_name
            if ns not in nets:
                st = self.state(ns)
                if st is None:
                    raise AgentError(f"{field}.{i}.namespaceName: DHCP namespace {ns} is not "
                                     "prepared on this host (prepare it first)")
                mask = ip_int(st.netmask)
                nets[ns] = st, ip_int(st.server_ip) & mask, mask
            st, net, mask = nets[ns]
            if e.bridge_name != st.bridge:
                raise AgentError(f"{field}.{i}.bridgeName: namespace {ns} is on bridge "
                                 f"{st.bridge}, not {e.bridge_name}")
            if ip_int(e.ip) & mask != net or e.ip == st.server_ip:
                raise AgentError(f"{field}.{i}.ip: {e.ip} is not a VM address of "
                                 f"{st.network}, the network DHCP namespace {ns} serves "
                                 f"(server {st.server_ip})")
            if owners.setdefault((ns, e.ip), e.mac) != e.mac:
                raise AgentError(f"{field}.{i}.ip: {e.ip} is also given to "
                                 f"{owners[(ns, e.ip)]} in this command")
            if e.is_default_l3_network:
                first = options.setdefault(ns, e)
                if first is e:
                    if e.gateway and ip_int(e.gateway) & mask != net:
                        raise AgentError(f"{field}.{i}.gateway: {e.gateway} is not in "
                                         f"{st.network}")
                elif (e.gateway, e.dns, e.dns_domain) != (first.gateway, first.dns,
                                                          first.dns_domain):
                    raise AgentError(f"{field}.{i}.gateway: the default-L3 entries of "
                                     f"namespace {ns} disagree on gateway/dns/dnsDomain")
            groups.setdefault(ns, []).append(e)
        return groups

    # -- commands (the caller holds lock_name(namespace)) ------------------------------
    def prepare(self, cmd: PrepareDhcpCmd) -> NamespaceStatus:
        """Namespace, veth, server address, ebtables chain and a running dnsmasq; a
        changed server IP, netmask or uplink is reconfigured in place."""
        old = self.state(cmd.namespace_name)
        if old and old.bridge != cmd.bridge_name:
            raise AgentError(f"bridgeName: namespace {cmd.namespace_name} is on bridge "
                             f"{old.bridge}; delete it before preparing it on "
                             f"{cmd.bridge_name}")
        uplink = self._uplink(cmd.bridge_name, cmd.physical_interface,
                              old.uplink if old else None)
        st = State(cmd.namespace_name, cmd.bridge_name, cmd.dhcp_server_ip, cmd.dhcp_netmask,
                   uplink)
        if old:
            st = replace(st, gateway=old.gateway, dns=old.dns, domain=old.domain,
                         non_default=old.non_default)
        for d in (self.root, self._dir(st.namespace)):
            d.mkdir(mode=0o755, exist_ok=True)
            d.chmod(0o755)  # dnsmasq reads its files as nobody
        self._save(st, old)
        current = self.dnsmasq(st.namespace).read_hosts()
        return self._converge(st, old, current, current, full=True)

    def apply(self, namespace: str, entries: list[DhcpEntry], rebuild: bool = False,
              full: bool = False) -> NamespaceStatus:
        """Add or replace ``entries`` (``rebuild``: serve exactly them) with one hosts
        file write and one reload. ``full`` also re-checks the namespace's links and rules
        (connect/flush); otherwise a running dnsmasq vouches for them."""
        st = self._require(namespace)
        current = self.dnsmasq(namespace).read_hosts()
        leases = merge([] if rebuild else current, entries)
        new = learn(replace(st, non_default=[]) if rebuild else st, entries)
        new = replace(new, non_default=[m for m in new.non_default if m in leases])
        self._save(new, st)
        return self._converge(new, st, current, leases.values(), full=full)

    def release(self, namespace: str, macs: Iterable[str]) -> NamespaceStatus:
        """Stop serving ``macs`` (absent ones are fine)."""
        st = self.state(namespace)
        if st is None:
            return NamespaceStatus()
        gone = set(macs)
        current = self.dnsmasq(namespace).read_hosts()
        new = replace(st, non_default=[m for m in st.non_default if m not in gone])
        self._save(new, st)
        return self._converge(new, st, current, [x for x in current if x.mac not in gone])

    def set_default(self, namespace: str, mac: str, default: bool,
                    gateway: str | None = None) -> NamespaceStatus:
        """Make ``mac``'s NIC get (or not get) the default route and DNS of this L3."""
        st = self._require(namespace)
        non_default = set(st.non_default)
        if default:
            non_default.discard(mac)
        else:
            non_default.add(mac)
        new = replace(st, non_default=sorted(non_default), gateway=gateway or st.gateway)
        self._save(new, st)
        current = self.dnsmasq(namespace).read_hosts()
        return self._converge(new, st, current, current)

    def delete(self, namespace: str) -> None:
        """dnsmasq, ebtables chain, veth, namespace and files: all gone; absent is fine."""
        for hook in self._before_delete:
            hook(namespace)
        outer, _, chain = names(namespace)
        dm = self.dnsmasq(namespace)
        dm.stop()
        ebtables.delete_chain(chain)
        netns.delete_link(outer)
        netns.delete(namespace)
        dm.remove()

    def adopt(self) -> dict[str, int | None]:
        """After an agent start: each namespace's running dnsmasq is kept as it is; one
        whose namespace or dnsmasq is gone (a host reboot) is rebuilt from its files if
        its bridge exists. Returns the dnsmasq pids (None: could not be restored)."""
        found: dict[str, int | None] = {}
        for ns in self.namespaces():
            dm = self.dnsmasq(ns)
            pid = dm.pid() if netns.exists(ns) else None
            if pid is None:
                try:
                    st, current = self.state(ns), dm.read_hosts()
                    pid = self._converge(st, st, current, current, full=True).dnsmasq_pid
                    log.info("DHCP namespace %s restored (dnsmasq pid %s)", ns, pid)
                except Exception as exc:  # noqa: BLE001 - one broken namespace must not
                    log.warning("DHCP namespace %s not restored: %s", ns, exc)  # stop the agent
            else:
                log.info("DHCP namespace %s adopted (dnsmasq pid %s)", ns, pid)
            found[ns] = pid
        return found

    # -- internals --------------------------------------------------------------------
    def _converge(self, st: State, old: State | None, current: list[Lease],
                  leases: Iterable[Lease], full: bool = False) -> NamespaceStatus:
        """Links and rules (when ``full`` or dnsmasq is not running), then the files,
        then the cheapest dnsmasq action that makes it serve them: nothing, a reload
        (plus releasing the addresses taken from MACs), or a restart."""
        outer, inner, chain = names(st.namespace)
        dm = self.dnsmasq(st.namespace)
        leases = list(leases)
        pid = dm.pid()
        if pid is not None and not netns.exists(st.namespace):
            dm.stop()  # it serves a namespace nobody can reach any more
            pid = None
        if full or pid is None or netns.master_of(outer) != st.bridge:
            self._ensure_links(st, old)  # else the running dnsmasq, plugged in, vouches
        taken = set(current) - set(leases)
        hosts_changed = dm.write_hosts(leases)
        conf_changed = dm.write_conf(dm.render_conf(inner, st.server, st.options,
                                                    st.non_default))
        if pid is None:
            pid, action = dm.start(), "start"
        elif conf_changed or len(taken) > MAX_RELEASES:
            pid, action = dm.restart(), "restart"
        elif hosts_changed:
            pid, action = dm.reload(), "reload"
            dm.release(inner, st.server_ip, taken)
        else:
            action = "none"
        if action != "none":
            log.info("DHCP namespace %s: %d entries, dnsmasq %s (pid %s)", st.namespace,
                     len(leases), action, pid)
        return NamespaceStatus(entries=len(leases), reload=action, dnsmasq_pid=pid)

    def _ensure_links(self, st: State, old: State | None) -> None:
        outer, inner, chain = names(st.namespace)
        netns.ensure(st.namespace)
        netns.ensure_veth(outer, inner, st.namespace, st.bridge)
        netns.ensure_address(st.namespace, inner, st.server, old.server if old else None)
        ebtables.ensure_chain(chain, uplink_rules(st.uplink, st.server_ip))

    def _uplink(self, bridge: str, given: str | None, known: str | None) -> str:
        """The bridge's port towards the other hosts: as given; else as the L2 agent
        recorded it on the bridge; else as before; else ZStack's naming (``br_eth0`` on
        ``eth0``, ``br_eth0_10`` on ``eth0.10``); else the one port that is neither a
        VM's tap nor a DHCP veth."""
        if given and netns.master_of(given) == bridge:  # sysfs: no netlink dump
            return given
        ports = {p.name: p for p in netns.bridge_ports(bridge)}
        if given:
            if given not in ports:
                raise AgentError(f"physicalInterface: {given} is not a port of bridge "
                                 f"{bridge} (ports: {', '.join(ports) or 'none'})")
            return given
        alias = netns.link_alias(bridge) or ""
        if alias.startswith(L2_UPLINK_ALIAS):
            return alias[len(L2_UPLINK_ALIAS):]
        if known in ports:
            return known
        if bridge.startswith("br_"):
            nic, _, vlan = bridge[3:].partition("_")
            conventional = f"{nic}.{vlan}" if vlan else nic
            if conventional in ports:
                return conventional
        candidates = [p.name for p in ports.values()
                      if p.kind != "tun" and not p.name.startswith(OUTER_PREFIX)]
        if len(candidates) == 1:
            return candidates[0]
        raise AgentError(f"physicalInterface: cannot tell which port of bridge {bridge} is "
                         f"its uplink (candidates: {', '.join(candidates) or 'none'}); "
                         "name it in physicalInterface")

    def _save(self, st: State, old: State | None) -> None:
        if st != old:
            jsonfile.write(self._dir(st.namespace) / "state.json", asdict(st))

    def _require(self, namespace: str) -> State:
        st = self.state(namespace)
        if st is None:
            raise AgentError(f"DHCP namespace {namespace} is not prepared on this host")
        return st

    def _dir(self, namespace: str) -> Path:
        return self.root / namespace
