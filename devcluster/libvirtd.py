"""virtlogd + libvirtd inside a simulated host, as that host's hypervisor daemon.

Each host gets private /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt and
/var/log/libvirt (bind mounts from the host directory, inside the host's mount
namespace) and its own /run (from :class:`devcluster.simhost.SimHost`), so two
libvirtds on one machine do not share domains, state or sockets. The configuration is
what lets two of them coexist and, later, migrate between each other: qemu as root
without a security driver or cgroups, per-host VNC/websocket/migration port ranges,
a per-host ``host_uuid``, ``migration_host`` = the host's mgmt IP and libvirtd
listening on TCP (no auth) at that IP for peer-to-peer migration.

libvirtd runs under :mod:`devcluster.subreaper`: qemu processes it orphans are reaped
at once (destroy 0.2 s instead of ~1.6 s) and killed when libvirtd is stopped.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import uuid
from pathlib import Path

import libvirt

from devcluster import procs
from devcluster.simhost import SimHost

SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1
# libvirt probes qemu's capabilities (~1.3 s) into an empty cache; each new host starts
# from this machine-wide copy instead. libvirt re-validates it (binary ctimes, versions,
# kernel) and re-probes if stale, after which start() refreshes the copy.
CAPS_SEED = Path("/var/cache/zfleet/libvirt-qemu-capabilities")
SYSTEM_ETC = Path("/etc/libvirt")
PRIVATE_DIRS = {
    "etc": "/etc/libvirt",
    "lib": "/var/lib/libvirt",
    "cache": "/var/cache/libvirt",
    "log": "/var/log/libvirt",
}


class Libvirtd:
    """The libvirtd of one :class:`SimHost`; state lives under ``<host dir>/libvirt``."""

    def __init__(self, host: SimHost):
        self.host = host
        self.dir = host.dir / "libvirt"
        self.socket = host.dir / "run" / "libvirt" / "libvirt-sock"
        if len(str(self.socket)) > SUN_PATH_MAX:
            raise ValueError(
                f"libvirt socket path {self.socket} is {len(str(self.socket))} bytes; unix "
                f"sockets allow {SUN_PATH_MAX}: put host {host.name}'s directory on a shorter path"
            )

    @property
    def uri(self) -> str:
        """Connection URI for clients in the root namespace."""
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def uri_in_host(self) -> str:
        return "qemu:///system"

    @property
    def tcp_uri(self) -> str:
        """URI over the mgmt network, e.g. for peer-to-peer migration from another host."""
        return f"qemu+tcp://{self.host.mgmt_address}/system"

    @property
    def host_uuid(self) -> str:
        """Stable per host directory, so a restarted libvirtd keeps its identity."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"zfleet-simhost:{self.host.dir}"))

    def ports(self) -> dict[str, tuple[int, int]]:
        """Per-host port ranges, from the last octet of the mgmt IP (unique in a /24)."""
        slot = int(ipaddress.ip_address(self.host.mgmt_address)) % 256
        return {
            "remote_display": (5900 + 40 * slot, 5900 + 40 * slot + 39),
            "remote_websocket": (16300 + 40 * slot, 16300 + 40 * slot + 39),
            "migration": (49152 + 64 * slot, 49152 + 64 * slot + 63),
        }

    def start(self, timeout: float = 30.0) -> Libvirtd:
        """Start virtlogd and libvirtd in the host; return once ``libvirt.open(uri)`` answers."""
        if self._answers():
            return self
        self.stop()  # a virtlogd whose libvirtd died would keep the new one from starting
        self._prepare_dirs()
        self._write_config()
        logs = self.host.dir / "logs"
        self.host.spawn("virtlogd", ["virtlogd"], logs / "virtlogd.log")
        proc = self.host.spawn(
            "libvirtd", ["libvirtd", "--listen"], logs / "libvirtd.log", subreaper=True
        )
        procs.wait_for(
            lambda: not proc.alive() or self._answers(), timeout, f"libvirtd in {self.host.name}"
        )
        if not proc.alive():
            tail = Path(proc.log).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"libvirtd in {self.host.name} exited: {tail}")
        self._probe_and_seed_caps()
        return self

    def stop(self) -> None:
        """Stop libvirtd (its subreaper then kills the qemu it leaves) and virtlogd."""
        self.host.stop_daemon("libvirtd")
        self.host.stop_daemon("virtlogd")

    def status(self) -> dict:
        daemons = {n: self.host.daemon(n) for n in ("libvirtd", "virtlogd")}
        return {
            "uri": self.uri,
            "answers": self._answers(),
            **{f"{n}_pid": p.pid if p and p.alive() else None for n, p in daemons.items()},
        }

    def open(self) -> libvirt.virConnect:
        return libvirt.open(self.uri)

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            libvirt.open(self.uri).close()
        except libvirt.libvirtError:
            return False
        return True

    def _prepare_dirs(self) -> None:
        etc = self.dir / "etc"
        if not etc.exists():  # keep persistent domain definitions across restarts
            shutil.copytree(SYSTEM_ETC, etc, symlinks=True)
            for autostarted in (etc / "qemu" / "networks" / "autostart").glob("*"):
                autostarted.unlink()
        for sub, target in PRIVATE_DIRS.items():
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
            self.host.bind(self.dir / sub, target)
        caps = self._caps_dir()
        caps.mkdir(parents=True, exist_ok=True)
        if not any(caps.glob("*.xml")):
            for seed in CAPS_SEED.glob("*.xml"):
                shutil.copy2(seed, caps / seed.name)

    def _caps_dir(self) -> Path:
        return self.dir / "cache" / "qemu" / "capabilities"

    def _probe_and_seed_caps(self) -> None:
        """Make libvirt load (or probe) qemu's capabilities now; keep fresh ones as seed."""
        conn = self.open()
        try:
            conn.getCapabilities()
        finally:
            conn.close()
        CAPS_SEED.mkdir(parents=True, exist_ok=True)
        for ours in self._caps_dir().glob("*.xml"):
            seed = CAPS_SEED / ours.name
            if not seed.exists() or seed.read_bytes() != ours.read_bytes():
                tmp = seed.with_suffix(f".{os.getpid()}.tmp")
                shutil.copy2(ours, tmp)
                tmp.replace(seed)

    def _write_config(self) -> None:
        ip = self.host.mgmt_address
        ports = self.ports()
        qemu = {
            "user": '"root"',
            "group": '"root"',
            "security_driver": '"none"',
            "cgroup_controllers": "[ ]",
            "vnc_listen": '"0.0.0.0"',
            "migration_host": f'"{ip}"',
            "migration_address": f'"{ip}"',
        }
        for name, (low, high) in ports.items():
            qemu[f"{name}_port_min"] = str(low)
            qemu[f"{name}_port_max"] = str(high)
        daemon = {
            "host_uuid": f'"{self.host_uuid}"',
            "auth_unix_ro": '"none"',
            "auth_unix_rw": '"none"',
            "listen_tls": "0",
            "listen_tcp": "1",
            "listen_addr": f'"{ip}"',
            "auth_tcp": '"none"',
        }
        etc = self.dir / "etc"
        _rewrite(SYSTEM_ETC / "qemu.conf", etc / "qemu.conf", qemu)
        _rewrite(SYSTEM_ETC / "libvirtd.conf", etc / "libvirtd.conf", daemon)


def _rewrite(system: Path, target: Path, settings: dict[str, str]) -> None:
    """The system file minus any active line for ``settings``, then ``settings``.

    libvirt's config parser takes the first occurrence of a key, so ours must be the
    only active one rather than merely the last.
    """
    active = re.compile(r"^\s*(\w+)\s*=")
    kept = [
        line
        for line in system.read_text().splitlines()
        if not ((m := active.match(line)) and m.group(1) in settings)
    ]
    ours = [f"{key} = {value}" for key, value in settings.items()]
    target.write_text("\n".join([*kept, "", "# zfleet devcluster", *ours, ""]))
