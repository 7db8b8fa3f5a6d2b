"""The EC2-style metadata service of the flat network provider (ZStack's user data).

Each L3's service lives in that L3's DHCP namespace (:class:`kvmagent.drivers.dhcp.
FlatDhcp`): 169.254.169.254 on the namespace's inner veth, and a
:mod:`kvmagent.metadata_server` process there, one per namespace, in its own session and
found again by its pid file after an agent restart (like dnsmasq). What it serves is a
JSON file per VM, keyed by the VM's IP, under ``<data dir>/metadata/<namespace>/vms/``.

On the host, ebtables chains ``ZM-<hash>``:
- nat PREROUTING: IPv4 from the L3 to 169.254.169.254 goes to the namespace's MAC, so a
  VM routing it via its gateway reaches the service;
- filter FORWARD: ARP for 169.254.169.254 never crosses the uplink (each host answers its
  own VMs), and the IP of each VM applied here is bound to its NIC's MAC for IPv4 and
  ARP into the namespace (the service is also on the DHCP server's address): a VM
  claiming another VM's IP is dropped and never sees its user data; an address nobody
  applied gets 404 (there is nothing).

Callers hold ``netns:<namespace>`` (:func:`kvmagent.drivers.dhcp.lock_name`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

import kvmagent
from agentlib import jsonfile
from agentlib.errors import AgentError
from kvmagent.drivers import ebtables, netns
from kvmagent.drivers.dhcp import DhcpNamespace, FlatDhcp
from kvmagent.drivers.dnsmasq import LOG_ROTATE_BYTES
from kvmagent.metadata_server import PID_FILE, VMS_DIR, vm_file
from kvmagent.models.userdata import UserdataTO

log = logging.getLogger(__name__)

METADATA_IP = "169.254.169.254"
START_TIMEOUT = 15.0


def chain(namespace: str) -> str:
    return "ZM-" + hashlib.sha1(namespace.encode()).hexdigest()[:10]


def filter_rules(ns: DhcpNamespace, bindings: list[tuple[str, str]]) -> list[str]:
    """As ``ebtables -L`` prints them; ``bindings``: each applied VM's (IP, MAC)."""
    rules = [f"-p ARP -{d} {ns.uplink} --arp-ip-{w} {METADATA_IP} -j DROP"
             for w in ("dst", "src") for d in ("i", "o")]
    for ip, mac in bindings:  # ARP too: a spoofed one would steer the server's replies
        rules += [f"-p ARP -o {ns.outer} --arp-ip-src {ip} --arp-mac-src ! {mac} -j DROP",
                  f"-p IPv4 -s ! {mac} -o {ns.outer} --ip-src {ip} -j DROP"]
    return rules


def nat_rules(ns: DhcpNamespace, inner_mac: str) -> list[str]:
    network = ipaddress.IPv4Interface(f"{ns.server_ip}/{ns.prefixlen}").network
    return [f"-p IPv4 --ip-src {network} --ip-dst {METADATA_IP} -j dnat --to-dst "
            f"{inner_mac} --dnat-target ACCEPT"]


class MetadataService:
    """The metadata servers of this host's DHCP namespaces."""

    def __init__(self, data_dir: Path, dhcp: FlatDhcp):
        self.root = Path(data_dir) / "metadata"
        self.dhcp = dhcp
        self._children: dict[int, subprocess.Popen] = {}
        self._bindings: dict[str, dict[Path, tuple[tuple[int, int, int], tuple[str, str]]]] = {}

    def dir(self, namespace: str) -> Path:
        return self.root / namespace

    def namespaces(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []

    def bindings(self, namespace: str) -> list[tuple[str, str]]:
        """(IP, MAC) of each VM the namespace serves. A file is read again only when its
        stat changed: with 500 VMs in one namespace, re-reading every file (user data
        included) for each VM applied was a tenth of the agent's time in a 1,000-VM
        create (bench/create_vms.py)."""
        d = self.dir(namespace) / VMS_DIR
        known = self._bindings.get(namespace, {})
        seen = {}
        for path in sorted(d.glob("*.json")) if d.is_dir() else []:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if known.get(path, (None,))[0] == stamp:
                seen[path] = known[path]
            elif (vm := jsonfile.read(path)) is not None:
                seen[path] = (stamp, (vm["vmIp"], vm["vmMac"]))
        self._bindings[namespace] = seen
        return [binding for _, binding in seen.values()]

    # -- commands (the caller holds the namespace's lock) ------------------------------
    def records(self, namespace: str, items: list[tuple[str, UserdataTO]]) -> list[dict]:
        """What :meth:`write` stores for each (field path, VM): checked against the
        namespace (its bridge, the VM's DHCP entry for its MAC); raises naming the field."""
        ns = self._require(namespace, f"{items[0][0]}.namespaceName")
        leases = {lease.ip: lease.mac for lease in self.dhcp.dnsmasq(namespace).read_hosts()}
        records = []
        for field, to in items:
            if to.bridge_name != ns.bridge:
                raise AgentError(f"{field}.bridgeName: namespace {namespace} is on "
                                 f"bridge {ns.bridge}, not {to.bridge_name}")
            mac = to.vm_mac or leases.get(to.vm_ip)
            if mac is None:
                raise AgentError(f"{field}.vmIp: {to.vm_ip} has no DHCP entry in "
                                 f"namespace {namespace} (apply DHCP first or give vmMac)")
            records.append({**to.model_dump(by_alias=True, mode="json"), "vmMac": mac.lower()})
        return records

    def write(self, namespace: str, records: list[dict], rebuild: bool = False) -> int:
        """Write each VM's file (atomically), make sure address, rules and server exist;
        ``rebuild``: the VMs not in ``records`` are dropped. The server's pid."""
        d = self.dir(namespace) / VMS_DIR
        d.mkdir(parents=True, exist_ok=True)
        keep = {r["vmIp"] for r in records}
        if rebuild:
            for p in d.glob("*.json"):
                if p.stem not in keep:
                    p.unlink()
        for r in records:
            jsonfile.write(vm_file(self.dir(namespace), r["vmIp"]), r)
        return self.ensure(namespace)

    def release(self, namespace: str, *vm_ips: str) -> int | None:
        """Stop serving ``vm_ips`` (absent ones are fine)."""
        gone = [p for p in (vm_file(self.dir(namespace), ip) for ip in vm_ips) if p.exists()]
        if not gone:
            return self.pid(namespace)
        for path in gone:
            path.unlink()
        return self.ensure(namespace) if self.dhcp.namespace(namespace) else None

    def cleanup(self, namespace: str) -> None:
        """Server, rules, address and files of the namespace's service: all gone."""
        self.stop(namespace)
        ebtables.delete_chain(chain(namespace))
        ebtables.delete_chain(chain(namespace), "PREROUTING", "nat")
        ns = self.dhcp.namespace(namespace)
        if ns and netns.exists(namespace):
            with netns.inside(namespace) as ipr:
                index = ipr.link_lookup(ifname=ns.inner)
                if index and METADATA_IP in _addresses(ipr, index[0]):
                    ipr.addr("del", index=index[0], address=METADATA_IP, prefixlen=32)
        shutil.rmtree(self.dir(namespace), ignore_errors=True)
        self._bindings.pop(namespace, None)

    def ensure(self, namespace: str) -> int:
        """Address, ebtables chains and a running server."""
        ns = self._require(namespace, "namespaceName")
        inner_mac = netns.ensure_address(namespace, ns.inner, f"{METADATA_IP}/32")
        ebtables.ensure_chain(chain(namespace), filter_rules(ns, self.bindings(namespace)))
        ebtables.ensure_chain(chain(namespace), nat_rules(ns, inner_mac), "PREROUTING", "nat")
        return self.start(namespace)

    def adopt(self) -> dict[str, int | None]:
        """After an agent start: running servers are kept; one that is gone (a host
        reboot) is started again if its DHCP namespace is back."""
        found: dict[str, int | None] = {}
        for namespace in self.namespaces():
            pid = self.pid(namespace)
            if pid is None and self.dhcp.namespace(namespace) and netns.exists(namespace):
                try:
                    pid = self.ensure(namespace)
                except Exception as exc:  # noqa: BLE001 - one broken namespace must not
                    log.warning("metadata of %s not restored: %s", namespace, exc)
            found[namespace] = pid
            log.info("metadata server of %s: pid %s", namespace, pid)
        return found

    # -- the process ------------------------------------------------------------------
    def pid(self, namespace: str) -> int | None:
        d = self.dir(namespace)
        try:
            pid = int((d / PID_FILE).read_text().strip())
            proc = psutil.Process(pid)
            cmd = proc.cmdline()
            if ("kvmagent.metadata_server" in cmd and str(d) in cmd
                    and proc.status() != psutil.STATUS_ZOMBIE):
                return pid
        except (OSError, ValueError, psutil.Error):
            pass
        return None

    def start(self, namespace: str) -> int:
        """Running on the namespace's current addresses, in the namespace now under its
        name = no-op; otherwise (re)started."""
        listen = [f"{METADATA_IP}:80", f"{self._require(namespace, 'namespaceName').server_ip}:80"]
        for child in [c for c in self._children.values() if c.poll() is not None]:
            del self._children[child.pid]  # reaped (poll): a server that died
        pid = self.pid(namespace)
        if pid and _serves(pid, listen, netns.NETNS_DIR / namespace):
            return pid
        self.stop(namespace, pid)  # e.g. left in a namespace deleted and made again
        d = self.dir(namespace)
        (d / PID_FILE).unlink(missing_ok=True)
        env = {**os.environ, "PYTHONPATH": str(Path(kvmagent.__file__).parent.parent)}
        server_log = d / "server.log"  # a line per request: kept to one old copy
        if server_log.exists() and server_log.stat().st_size > LOG_ROTATE_BYTES:
            server_log.replace(d / "server.log.1")
        with open(server_log, "ab") as out:
            proc = subprocess.Popen(
                netns.nsenter(namespace, [sys.executable, "-m", "kvmagent.metadata_server",
                                          "--dir", str(d),
                                          *(arg for a in listen for arg in ("--listen", a))]),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, env=env)
        self._children[proc.pid] = proc
        deadline = time.monotonic() + START_TIMEOUT
        while (pid := self.pid(namespace)) != proc.pid:
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop(namespace, proc.pid)
                tail = server_log.read_text(errors="replace")[-2000:]
                raise AgentError(f"metadata server of namespace {namespace} did not start; "
                                 f"its log:\n{tail}")
            time.sleep(0.02)
        log.info("metadata server of %s started (pid %s)", namespace, pid)
        return pid

    def stop(self, namespace: str, pid: int | None = None) -> None:
        pid = pid or self.pid(namespace)
        if pid is None:
            return
        child = self._children.pop(pid, None)
        try:
            proc = psutil.Process(pid)
            proc.terminate()
            try:
                proc.wait(5)
            except psutil.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        except psutil.NoSuchProcess:
            pass
        if child is not None:
            child.wait(5)
        (self.dir(namespace) / PID_FILE).unlink(missing_ok=True)

    def _require(self, namespace: str, field: str) -> DhcpNamespace:
        ns = self.dhcp.namespace(namespace)
        if ns is None:
            raise AgentError(f"{field}: DHCP namespace {namespace} is not prepared on this "
                             "host (the metadata service lives in it)")
        return ns


def _addresses(ipr, index: int) -> set[str]:
    return {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2)}


def _serves(pid: int, listen: list[str], netns_path: Path) -> bool:
    """Server ``pid`` listens on ``listen``, in the namespace now at ``netns_path``."""
    try:
        return (all(a in psutil.Process(pid).cmdline() for a in listen)
                and os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(netns_path).st_ino)
    except (OSError, psutil.Error):
        return False
