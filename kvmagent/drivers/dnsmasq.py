"""One dnsmasq per DHCP namespace: its files, and starting, reloading and adopting it.

dnsmasq daemonizes itself (its own session, parented to init), so it outlives an agent
restart; the new agent finds it again by its pid file, checked against /proc (the
process must be a live dnsmasq started with this namespace's conf file, so a recycled
pid is never signalled).

Two kinds of change, two costs (measured, dnsmasq 2.90):

- the hosts file (``MAC,IP[,HOSTNAME],infinite`` lines only) is re-read on SIGHUP:
  ~15 ms for 1,000 lines, ~200 ms for 10,000. Lines with ``set:<tag>`` would make
  dnsmasq 2.90 segfault on SIGHUP once a lease exists, so per-NIC differences (which
  NICs get no default route) are tags set by ``dhcp-mac`` in the conf instead;
- the conf (per-L3 options and those tags) is read only at start: a change restarts
  dnsmasq (25-35 ms).

A lease dnsmasq handed out stays in its memory after its line is gone (infinite leases),
and it will not give that address to anyone else ("not using configured address ... it
is leased to ..."): so an address taken from a MAC is released on that MAC's behalf with
a DHCPRELEASE sent from inside the namespace (what ZStack's agent used dhcp_release for).

Files are replaced atomically (temp + rename) and only when their content changes, so
a repeated command neither reloads nor restarts anything. dnsmasq drops root for
``nobody`` before it reads the hosts file: the files are world-readable and every
directory above them must let others through (checked before a start).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import stat
import struct
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import psutil

from agentlib import shell
from agentlib.errors import AgentError
from kvmagent.drivers import netns

NON_DEFAULT_TAG = "nondefault"
LOG_ROTATE_BYTES = 8 << 20
RELOAD_TIMEOUT = 30.0
MAX_RELEASES = 64
"""More leases to forget than this: a restart (which forgets all) is quicker and never
overflows dnsmasq's socket buffer."""


class DnsmasqError(AgentError):
    """dnsmasq would not start or reload (the message carries its own words)."""


class Lease(NamedTuple):
    """One static lease: a line of the hosts file (a tuple: batches hash and compare
    thousands)."""

    mac: str
    ip: str
    hostname: str = ""

    def line(self) -> str:
        name = f",{self.hostname}" if self.hostname else ""
        return f"{self.mac},{self.ip}{name},infinite"

    @classmethod
    def parse(cls, line: str) -> Lease:
        fields = line.strip().split(",")
        return cls(fields[0], fields[1], fields[2] if len(fields) == 4 else "")


@dataclass(frozen=True)
class L3Options:
    """What every NIC of the L3 is told besides its address (the default L3's NICs only:
    router, DNS and domain)."""

    gateway: str | None = None
    dns: tuple[str, ...] = ()
    domain: str = ""


def render_hosts(leases: Iterable[Lease]) -> str:
    return "".join(lease.line() + "\n" for lease in leases)


def parse_hosts(text: str) -> list[Lease]:
    return [Lease.parse(line) for line in text.splitlines() if line.strip()]


_parsed: dict[Path, tuple[tuple[int, int, int], list[Lease]]] = {}
"""Hosts file -> (its inode, mtime and size when parsed, its leases)."""


class Dnsmasq:
    """The dnsmasq of network namespace ``namespace``, its files under ``dir``."""

    def __init__(self, dir: Path, namespace: str):
        self.dir = Path(dir)
        self.netns = namespace
        self.conf = self.dir / "dnsmasq.conf"
        self.hosts = self.dir / "hosts"
        self.pid_file = self.dir / "dnsmasq.pid"
        self.log = self.dir / "dnsmasq.log"

    # -- files ------------------------------------------------------------------------
    def render_conf(self, interface: str, server: str, options: L3Options,
                    non_default: Iterable[str]) -> str:
        """``server`` is the DHCP server's address with its prefix (``10.0.0.2/24``)."""
        net = ipaddress.IPv4Interface(server).network
        lines = [
            f"# dnsmasq of DHCP namespace {self.netns}: written by kvmagent, edits are lost",
            "port=0", "no-resolv", "no-hosts", "no-ping", "bind-interfaces",
            f"interface={interface}", "except-interface=lo", "leasefile-ro",
            "dhcp-authoritative", f"dhcp-lease-max={max(net.num_addresses, 1000)}",
            f"dhcp-range={net.network_address},static,{net.netmask},infinite",
            "dhcp-ignore=tag:!known",
            f"dhcp-hostsfile={self.hosts}",
            f"pid-file={self.pid_file}",
            f"log-facility={self.log}",
            # without a router option dnsmasq offers its own address as the router
            f"dhcp-option=tag:{NON_DEFAULT_TAG},option:router",
            f"dhcp-option=tag:!{NON_DEFAULT_TAG},option:router"
            + (f",{options.gateway}" if options.gateway else ""),
        ]
        if options.dns:
            lines.append(f"dhcp-option=tag:!{NON_DEFAULT_TAG},option:dns-server,"
                         + ",".join(options.dns))
        if options.domain:
            lines.append(f"dhcp-option=tag:!{NON_DEFAULT_TAG},option:domain-name,"
                         f"{options.domain}")
        lines += [f"dhcp-mac=set:{NON_DEFAULT_TAG},{mac}" for mac in sorted(non_default)]
        return "\n".join(lines) + "\n"

    def read_hosts(self) -> list[Lease]:
        """The hosts file's leases (parsed again only if the file changed since this
        process last read or wrote it: a 10,000-line parse costs ~15 ms)."""
        try:
            st = self.hosts.stat()
        except FileNotFoundError:
            return []
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = _parsed.get(self.hosts)
        if cached and cached[0] == key:
            return cached[1]
        leases = parse_hosts(self.hosts.read_text())
        _parsed[self.hosts] = (key, leases)
        return leases

    def write_conf(self, text: str) -> bool:
        return _write_if_changed(self.conf, text)

    def write_hosts(self, leases: list[Lease]) -> bool:
        if self.read_hosts() == leases:
            return False
        _write_atomic(self.hosts, render_hosts(leases))
        st = self.hosts.stat()
        _parsed[self.hosts] = ((st.st_ino, st.st_mtime_ns, st.st_size), leases)
        return True

    # -- the process ------------------------------------------------------------------
    def pid(self) -> int | None:
        """The running dnsmasq of this conf, from the pid file, checked in /proc."""
        try:
            pid = int(self.pid_file.read_text().strip())
            proc = psutil.Process(pid)
            ours = f"--conf-file={self.conf}" in proc.cmdline()
            if ours and proc.status() != psutil.STATUS_ZOMBIE and proc.name() == "dnsmasq":
                return pid
        except (OSError, ValueError, psutil.Error):
            pass
        return None

    def start(self) -> int:
        """Start dnsmasq in the namespace (it daemonizes); its pid. Running = no-op."""
        pid = self.pid()
        if pid:
            return pid
        self.pid_file.unlink(missing_ok=True)
        self._check_reachable()
        if self.log.exists() and self.log.stat().st_size > LOG_ROTATE_BYTES:
            self.log.replace(self.log.with_suffix(".log.1"))
        try:
            # dnsmasq's parent exits once the daemon is set up (or with its error)
            shell.run(netns.nsenter(self.netns, ["dnsmasq", f"--conf-file={self.conf}"]),
                      timeout=30)
        except shell.CommandFailed as exc:
            raise DnsmasqError(f"dnsmasq for namespace {self.netns} did not start: {exc}") \
                from None
        pid = self.pid()
        if pid is None:
            raise DnsmasqError(f"dnsmasq for namespace {self.netns} started but is not "
                               f"running; its log {self.log}:\n{self.log_tail()}")
        return pid

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (SIGKILL after ``timeout``); a zombie counts as gone: dnsmasq is not
        our child, and whoever reaps orphans may take seconds to."""
        pid = self.pid()
        if pid is None:
            return
        proc = psutil.Process(pid)
        proc.terminate()
        if not _wait_gone(proc, timeout):
            proc.kill()
            _wait_gone(proc, timeout)
        self.pid_file.unlink(missing_ok=True)

    def remove(self) -> None:
        """Stop dnsmasq and delete its files."""
        self.stop()
        _parsed.pop(self.hosts, None)
        shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self) -> int:
        self.stop()
        return self.start()

    def reload(self, timeout: float = RELOAD_TIMEOUT) -> int:
        """SIGHUP, and wait until dnsmasq has read the hosts file again (it logs
        ``read <hosts>`` once done): when this returns, the new entries are served."""
        pid = self.pid()
        if pid is None:
            return self.start()
        offset = self.log.stat().st_size if self.log.exists() else 0
        done, failed = f"read {self.hosts}\n", f"cannot read {self.hosts}"
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        polls = 0
        while done not in (new := self._log_since(offset)):
            if failed in new:
                raise DnsmasqError(f"dnsmasq (pid {pid}) of namespace {self.netns}: "
                                   f"{new[new.index(failed):].splitlines()[0]}")
            polls += 1
            # checking the process costs ~10x reading the log: every 50th poll (25 ms)
            if polls % 50 == 0 and self.pid() != pid:
                raise DnsmasqError(f"dnsmasq (pid {pid}) of namespace {self.netns} died on "
                                   f"reload; its log:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise DnsmasqError(f"dnsmasq (pid {pid}) of namespace {self.netns} did not "
                                   f"re-read {self.hosts} within {timeout:.0f}s")
            time.sleep(0.0005)
        return pid

    def _check_reachable(self) -> None:
        for d in [self.dir, *self.dir.parents]:
            if not d.stat().st_mode & stat.S_IXOTH:
                raise DnsmasqError(f"dnsmasq (running as nobody) cannot reach {self.hosts}: "
                                   f"{d} is not searchable by others (chmod o+x {d})")

    def release(self, interface: str, server_ip: str, leases: Iterable[Lease]) -> None:
        """Make dnsmasq forget ``leases`` now (as if each client had released it)."""
        leases = list(leases)
        if not leases:
            return
        with netns.udp_socket(self.netns, interface) as sock:
            for lease in leases:
                sock.sendto(release_packet(server_ip, lease), (server_ip, 67))

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def _log_since(self, offset: int) -> str:
        with open(self.log, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")


def _wait_gone(proc: psutil.Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.005)
    return False


def release_packet(server_ip: str, lease: Lease) -> bytes:
    """A DHCPRELEASE from ``lease``'s client (RFC 2131: ciaddr, chaddr, server id)."""
    chaddr = bytes.fromhex(lease.mac.replace(":", "")).ljust(16, b"\0")
    header = struct.pack("!BBBBIHH4s4s4s4s16s192s4s", 1, 1, 6, 0,
                         int.from_bytes(os.urandom(4), "big"), 0, 0,
                         socket.inet_aton(lease.ip), bytes(4), bytes(4), bytes(4), chaddr,
                         bytes(192), bytes([99, 130, 83, 99]))
    return header + bytes([53, 1, 7, 54, 4]) + socket.inet_aton(server_ip) + bytes([255])


def _write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    _write_atomic(path, text)
    return True


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` at once (temp + rename), readable by dnsmasq, which runs as nobody."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
