"""Network namespaces and the veth pairs that join them to a host bridge (pyroute2).

Every function is idempotent (it converges to the wanted state and says nothing if it
is already there), so a repeated or concurrent-then-serialised command never fails on
"File exists"; what is already as wanted is only read, never written again. The peer of
a veth is created directly inside its namespace (~0.5 ms) rather than moved there
(~20 ms). A socket in a namespace is made by a throwaway thread that enters it alone
(~0.1 ms): pyroute2 forks a child process of this agent for it (~40 ms of CPU each, the
largest cost of a VM's network on its host when a hundred are created at once).
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from agentlib.errors import AgentError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
IFF_UP = 1
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(AgentError):
    """A namespace or link operation failed (the message names it and the kernel's reason)."""


@dataclass(frozen=True)
class Port:
    name: str
    kind: str | None  # rtnl link kind: None for a physical NIC, "veth", "tun", "vxlan"...
    alias: str | None


def exists(name: str) -> bool:
    """A mounted namespace file: a leftover empty file (e.g. after a crash) does not count."""
    return os.path.ismount(NETNS_DIR / name)


def ensure(name: str) -> bool:
    """Create namespace ``name`` (loopback up) unless it exists; True if it was created."""
    if exists(name):
        return False
    (NETNS_DIR / name).unlink(missing_ok=True)
    try:
        netns.create(name)
    except OSError as exc:
        raise NetnsError(f"cannot create network namespace {name}: {exc}") from None
    with inside(name) as ipr:
        ipr.link("set", index=link_index(ipr, "lo", name), state="up")
    return True


def delete(name: str) -> None:
    """Remove namespace ``name``; its links go with it once no process is left inside."""
    if exists(name):
        netns.remove(name)
    else:
        (NETNS_DIR / name).unlink(missing_ok=True)


@contextmanager
def inside(name: str) -> Iterator[IPRoute]:
    """A netlink socket in namespace ``name``, which must exist."""
    if not exists(name):
        raise NetnsError(f"network namespace {name} does not exist")
    fd = socket_in(name, socket.AF_NETLINK, socket.SOCK_DGRAM).detach()
    try:
        ipr = IPRoute(fileno=fd, groups=0)
    except BaseException:
        os.close(fd)
        raise
    with ipr:
        yield ipr


@contextmanager
def host() -> Iterator[IPRoute]:
    with IPRoute(groups=0) as ipr:
        yield ipr


def socket_in(ns: str, family: int, kind: int) -> socket.socket:
    """A socket in namespace ``ns`` (OSError if there is none: it is never made).

    A thread of its own enters ``ns`` (setns moves only the calling thread) and ends with
    the socket made: no other thread ever runs in another namespace.
    """
    made: list = []

    def enter_and_make() -> None:
        try:
            fd = os.open(NETNS_DIR / ns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"cannot enter network namespace {ns}: "
                                       f"{os.strerror(err)}")
            finally:
                os.close(fd)
            made.append(socket.socket(family, kind))
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            made.append(exc)

    worker = threading.Thread(target=enter_and_make, name=f"netns {ns}")
    worker.start()
    worker.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


def udp_socket(ns: str, ifname: str) -> socket.socket:
    """A UDP socket in namespace ``ns`` whose packets leave by ``ifname``."""
    if not exists(ns):
        raise NetnsError(f"network namespace {ns} does not exist")
    sock = socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    return sock


def link_exists(ifname: str, ns: str | None = None) -> bool:
    if ns is None:
        return os.path.exists(f"/sys/class/net/{ifname}")
    if not exists(ns):
        return False
    with inside(ns) as ipr:
        return bool(ipr.link_lookup(ifname=ifname))


def ensure_veth(outer: str, inner: str, ns: str, bridge: str) -> bool:
    """Veth ``outer`` (a port of ``bridge``, up) whose peer ``inner`` is in ``ns`` (up).

    A half-made pair (outer without its peer in ``ns``, e.g. after the namespace was
    deleted by hand) is replaced. True if the pair was created. The host's side is read
    from sysfs first: a pair already in place costs one netlink session (its inner end).
    """
    if master_of(outer) == bridge and host_link_up(outer):
        with inside(ns) as nsr:
            peer = find_link(nsr, inner)
            if peer is not None:
                if not peer["flags"] & IFF_UP:
                    call(f"bring {inner} up in {ns}", nsr.link, "set", index=peer["index"],
                         state="up")
                return False
    created = False
    with host() as ipr, inside(ns) as nsr:
        br = ipr.link_lookup(ifname=bridge)
        if not br:
            raise NetnsError(f"bridge {bridge} does not exist on this host")
        link = find_link(ipr, outer)
        if link is not None and find_link(nsr, inner) is None:
            call(f"delete half-made veth {outer}", ipr.link, "del", index=link["index"])
            link = None
        if link is None:
            call(f"create veth {outer} with peer {inner} in namespace {ns}", ipr.link, "add",
                 ifname=outer, kind="veth", peer={"ifname": inner, "net_ns_fd": ns})
            created = True
            link = link_message(ipr, outer)
        if link.get("IFLA_MASTER") != br[0] or not link["flags"] & IFF_UP:
            call(f"attach {outer} to bridge {bridge}", ipr.link, "set", index=link["index"],
                 master=br[0], state="up")
        peer = link_message(nsr, inner, ns)
        if not peer["flags"] & IFF_UP:
            call(f"bring {inner} up in {ns}", nsr.link, "set", index=peer["index"], state="up")
    return created


def delete_link(ifname: str) -> None:
    """Delete a host link (and so a veth's peer); absent is fine."""
    with host() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if found:
            try:
                ipr.link("del", index=found[0])
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:
                    raise NetnsError(f"cannot delete link {ifname}: {exc}") from None


def ensure_address(ns: str, ifname: str, cidr: str, replaces: str | None = None) -> str:
    """``cidr`` on ``ifname`` in ``ns``; ``replaces`` (an address it had before) removed.
    Returns the link's MAC (what rules that steer traffic to the address need).

    Other addresses (e.g. a metadata service's 169.254.169.254) are left alone.
    """
    want = ipaddress.IPv4Interface(cidr)
    with inside(ns) as ipr:
        link = link_message(ipr, ifname, ns)
        index = link["index"]
        have = {ipaddress.IPv4Interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
                for a in ipr.get_addr(index=index, family=2)}
        if replaces and replaces != cidr:
            old = ipaddress.IPv4Interface(replaces)
            if old in have:
                call(f"remove {old} from {ifname} in {ns}", ipr.addr, "del", index=index,
                     address=str(old.ip), prefixlen=old.network.prefixlen)
        if want not in have:
            call(f"add {want} to {ifname} in {ns}", ipr.addr, "add", index=index,
                 address=str(want.ip), prefixlen=want.network.prefixlen)
        return link.get("IFLA_ADDRESS")


def bridge_ports(bridge: str) -> list[Port]:
    with host() as ipr:
        br = ipr.link_lookup(ifname=bridge)
        if not br:
            return []
        return [Port(link.get("IFLA_IFNAME"),
                     link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"),
                     link.get("IFLA_IFALIAS"))
                for link in ipr.get_links() if link.get("IFLA_MASTER") == br[0]]


def master_of(ifname: str) -> str | None:
    """The bridge a host link is a port of (None: not a port, or no such link)."""
    try:
        return os.path.basename(os.readlink(f"/sys/class/net/{ifname}/master"))
    except OSError:
        return None


def host_link_up(ifname: str) -> bool:
    """Host link ``ifname`` exists and is administratively up."""
    try:
        return bool(int(Path(f"/sys/class/net/{ifname}/flags").read_text(), 16) & IFF_UP)
    except (OSError, ValueError):
        return False


def link_alias(ifname: str) -> str | None:
    try:
        return Path(f"/sys/class/net/{ifname}/ifalias").read_text().strip() or None
    except OSError:
        return None


def find_link(ipr: IPRoute, ifname: str):
    """The netlink message of link ``ifname`` seen by ``ipr`` (None: there is none)."""
    try:
        return ipr.link("get", ifname=ifname)[0]
    except (NetlinkError, IndexError):
        return None


def link_message(ipr: IPRoute, ifname: str, ns: str | None = None):
    """:func:`find_link`, a missing link being a :class:`NetnsError` that says where it
    was looked for (in namespace ``ns``, or on the host)."""
    found = find_link(ipr, ifname)
    if found is None:
        where = f"in namespace {ns}" if ns else "on this host"
        raise NetnsError(f"link {ifname} does not exist {where}")
    return found


def link_index(ipr: IPRoute, ifname: str, ns: str | None = None) -> int:
    return link_message(ipr, ifname, ns)["index"]


def call(what: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, a netlink refusal raised as "cannot <what>: <reason>"."""
    try:
        return fn(*args, **kwargs)
    except NetlinkError as exc:
        raise NetnsError(f"cannot {what}: {exc}") from None


def nsenter(ns: str, argv: list[str]) -> list[str]:
    """The argv that runs ``argv`` in namespace ``ns`` (it keeps the agent's mounts)."""
    return ["nsenter", f"--net={NETNS_DIR / ns}", "--", *argv]
