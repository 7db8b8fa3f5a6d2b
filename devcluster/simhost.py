"""A simulated physical host: its own network, mount and UTS namespaces on this machine.

Several hosts on one machine must look like separate machines to the agents: each has
its own hostname, NICs on shared L2s (veths into root-namespace bridges, see
:mod:`devcluster.hostnet`), and a private /run, so namespaces that an agent makes with
``ip netns add`` inside one host (same names on every host) do not collide, and a
daemon's unix socket under /run is still reachable from outside at ``<dir>/run/...``.

The namespaces are held by one anchor process (``sleep infinity`` under ``unshare``).
Everything else enters them with ``nsenter``. The anchor's UTS namespace is the host's
identity: every process in the host, even inside a netns made in the host, shares it,
which is how ``stop()`` powers the whole host off.

All that ``stop()`` needs is persisted in the host directory (``simhost.json`` and a
:class:`devcluster.procs.Registry`), so a fresh ``SimHost(name, dir, prefix=...)``
can stop a host that another process started.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import shutil
import signal
import time
from pathlib import Path

import psutil

from agentlib import jsonfile, shell
from devcluster import hostnet, procs

ANCHOR = "anchor"
MAX_IFNAME = 15
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")


def root_link_name(prefix: str, host: str, index: int) -> str:
    """Root-namespace end of the host's NIC ``index``: readable if it fits, else hashed."""
    name = f"{prefix}-{host}-{index}"
    if len(name) <= MAX_IFNAME:
        return name
    room = MAX_IFNAME - len(f"{prefix}--{index}")
    return f"{prefix}-{hashlib.sha1(host.encode()).hexdigest()[:room]}-{index}"


class SimHost:
    """One simulated host: ``start()``, ``run()``/``spawn()`` inside it, ``stop()``.

    ``bridges`` maps extra NIC roles to shared bridges, e.g. ``{"data": "zfbr-data"}``;
    the mgmt NIC is eth0 (with ``mgmt_ip``), the extras eth1, eth2... in that order
    (see :attr:`nics`). Bridges that do not exist are made on demand and removed with
    the last host on them.
    """

    def __init__(
        self,
        name: str,
        dir: Path,
        mgmt_ip: str | None = None,
        mgmt_bridge: str | None = None,
        bridges: dict[str, str] | None = None,
        *,
        prefix: str = "zf",
    ):
        if not _NAME.match(name):
            raise ValueError(f"host name {name!r}: lowercase letters, digits and '-' only")
        if not prefix.isalnum() or len(prefix) > hostnet.MAX_PREFIX:
            raise ValueError(f"prefix {prefix!r}: 1-{hostnet.MAX_PREFIX} letters/digits")
        if mgmt_ip:
            ipaddress.ip_interface(mgmt_ip)  # raises ValueError before anything is made
        self.name = name
        self.dir = Path(dir).absolute()
        self.prefix = prefix
        self.mgmt_ip = mgmt_ip
        self.mgmt_bridge = mgmt_bridge
        self.bridges = dict(bridges or {})
        self.registry = procs.Registry(self.dir / "procs.json")
        self._state_path = self.dir / "simhost.json"

    # -- identity ---------------------------------------------------------------------
    @property
    def netns(self) -> str:
        """The name under which the root namespace sees this host's net namespace."""
        return f"{self.prefix}-{self.name}"

    @property
    def mgmt_address(self) -> str:
        ip = self.mgmt_ip or self._state().get("mgmt_ip")
        if not ip:
            raise ValueError(f"host {self.name}: no mgmt_ip")
        return str(ipaddress.ip_interface(ip).ip)

    @property
    def nics(self) -> dict[str, str]:
        """NIC name inside the host by role: ``{"mgmt": "eth0", "data": "eth1", ...}``."""
        roles = self._state().get("bridges") or {"mgmt": None, **self.bridges}
        return {role: f"eth{i}" for i, role in enumerate(roles)}

    @property
    def anchor_pid(self) -> int:
        if not self.running():
            raise RuntimeError(f"host {self.name} is not running")
        return self._state()["anchor"]["pid"]

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> SimHost:
        """Create the namespaces and plug the NICs in; a running host is left as it is."""
        if self.running():
            return self
        if not self.mgmt_ip or not self.mgmt_bridge:
            raise ValueError(f"host {self.name}: start() needs mgmt_ip and mgmt_bridge")
        self.stop()  # whatever a crashed earlier run left behind
        # /run is a tmpfs on a real machine: a host boots with an empty one, not with the
        # sockets, pid files and netns mount points of its last life
        shutil.rmtree(self.dir / "run", ignore_errors=True)
        (self.dir / "run" / "lock").mkdir(parents=True)  # /var/lock -> /run/lock
        argv = ["unshare", "--mount", "--net", "--uts", "--propagation", "private"]
        wrapper = procs.spawn(
            ANCHOR,
            [*argv, "sleep", "infinity"],
            self.dir / "logs" / "anchor.log",
            cwd=self.dir,
            subreaper=True,
        )
        self.registry.add(wrapper)
        try:
            anchor = procs.wait_for(lambda: _anchor_of(wrapper.pid), 10, "host anchor")
            links = {
                role: root_link_name(self.prefix, self.name, i)
                for i, role in enumerate(["mgmt", *self.bridges])
            }
            self._save_state(
                mgmt_ip=self.mgmt_ip,
                bridges={"mgmt": self.mgmt_bridge, **self.bridges},
                links=links,
                anchor={"pid": anchor.pid, "create_time": anchor.create_time()},
                uts_ns=os.readlink(f"/proc/{anchor.pid}/ns/uts"),
            )
            self._setup_inside()
            self._plug_nics(links)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Power the host off: its daemons, every process left in it, its NICs, its name.

        Idempotent; needs only name, dir and prefix. On-demand bridges left without
        ports are deleted.
        """
        state = self._state()
        for proc in reversed(self.registry.load()):
            if proc.name != ANCHOR:
                procs.stop(proc)
        if state.get("uts_ns"):
            _kill_all(pids_in(state["uts_ns"], exclude=state["anchor"]["pid"]))
        links = state.get("links") or self._links_by_name()
        for ifname in links.values():
            if hostnet.link(ifname):
                shell.run(["ip", "link", "del", "dev", ifname], check=False)
        if Path("/run/netns", self.netns).exists():
            shell.run(["ip", "netns", "delete", self.netns], check=False)
        self.registry.stop_all()
        for bridge in (state.get("bridges") or {}).values():
            hostnet.release_bridge(bridge)
        self._state_path.unlink(missing_ok=True)

    def running(self) -> bool:
        anchor = self._state().get("anchor")
        return bool(anchor) and not procs.is_dead(anchor["pid"], anchor["create_time"])

    def status(self) -> dict:
        state = self._state()
        return {
            "name": self.name,
            "running": self.running(),
            "mgmt_ip": state.get("mgmt_ip", self.mgmt_ip),
            "netns": self.netns,
            "anchor_pid": (state.get("anchor") or {}).get("pid"),
            "links": state.get("links", {}),
            "bridges": state.get("bridges", {}),
            "daemons": {
                p.name: {"pid": p.pid, "alive": p.alive()}
                for p in self.registry.load()
                if p.name != ANCHOR
            },
        }

    # -- inside the host --------------------------------------------------------------
    def command(self, argv: list[str], cwd: str | None = None) -> list[str]:
        """``argv`` wrapped to run inside the host (for callers that need their own Popen)."""
        wd = [f"--wd={cwd}"] if cwd else []
        return ["nsenter", "-t", str(self.anchor_pid), "-m", "-n", "-u", *wd, "--", *argv]

    def run(self, argv: list[str], *, cwd: str | None = None, **kw) -> shell.Result:
        """:func:`agentlib.shell.run` inside the host (cwd is a path inside the host)."""
        return shell.run(self.command(argv, cwd), **kw)

    def spawn(
        self,
        name: str,
        argv: list[str],
        log: Path,
        subreaper: bool = False,
        env: dict[str, str] | None = None,
    ) -> procs.Proc:
        """Start daemon ``argv`` inside the host; ``stop()`` stops it before the host."""
        if name == ANCHOR:
            raise ValueError(f"daemon name {ANCHOR!r} is reserved")
        proc = procs.spawn(name, self.command(argv), log, subreaper=subreaper, env=env)
        return self.registry.add(proc)

    def daemon(self, name: str) -> procs.Proc | None:
        return next((p for p in self.registry.load() if p.name == name), None)

    def stop_daemon(self, name: str, timeout: float = 10.0) -> None:
        proc = self.daemon(name)
        if proc:
            procs.stop(proc, timeout)

    def bind(self, source: Path, target: str) -> None:
        """Bind-mount ``source`` over ``target`` in the host's mount namespace, once."""
        inside, outside = os.stat(f"/proc/{self.anchor_pid}/root{target}"), os.stat(source)
        if (inside.st_dev, inside.st_ino) != (outside.st_dev, outside.st_ino):
            self.run(["mount", "--bind", str(source), target])

    # -- internals --------------------------------------------------------------------
    def _setup_inside(self) -> None:
        self.bind(self.dir / "run", "/run")
        # sysfs shows the net devices of the namespace that mounted it: remount it so
        # /sys/class/net is this host's NICs (as `ip netns exec` does)
        self.run(["mount", "-t", "sysfs", "sysfs", "/sys"])
        self.run(["hostname", self.name])
        self.run(["ip", "link", "set", "dev", "lo", "up"])
        shell.run(["ip", "netns", "attach", self.netns, str(self.anchor_pid)])

    def _plug_nics(self, links: dict[str, str]) -> None:
        bridges = {"mgmt": self.mgmt_bridge, **self.bridges}
        pid = str(self.anchor_pid)
        for role, inner in self.nics.items():
            outer = links[role]
            hostnet.ensure_bridge(bridges[role])
            shell.run(
                ["ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", pid]
            )
            shell.run(["ip", "link", "set", "dev", outer, "master", bridges[role], "up"])
            if role == "mgmt":
                self.run(["ip", "addr", "add", self.mgmt_ip, "dev", inner])
            self.run(["ip", "link", "set", "dev", inner, "up"])

    def _links_by_name(self) -> dict[str, str]:
        """Without a state file: the root links whose names this host would have used."""
        mine = {root_link_name(self.prefix, self.name, i): str(i) for i in range(10)}
        return {mine[ln["ifname"]]: ln["ifname"] for ln in hostnet.links() if ln["ifname"] in mine}

    def _state(self) -> dict:
        return jsonfile.read(self._state_path, {})

    def _save_state(self, **state) -> None:
        jsonfile.write(self._state_path, {"name": self.name, "prefix": self.prefix, **state})


def _anchor_of(wrapper_pid: int) -> psutil.Process | None:
    """The subreaper's child once ``unshare`` has made the namespaces and exec'd sleep."""
    for child in psutil.Process(wrapper_pid).children():
        if child.name() == "sleep":
            return child
    return None


def pids_in(uts_ns: str, exclude: int) -> list[int]:
    """The processes whose UTS namespace is ``uts_ns`` (every process of one host)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != exclude:
            try:
                if os.readlink(f"/proc/{entry}/ns/uts") == uts_ns:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def _kill_all(pids: list[int], grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL what is still there after ``grace`` seconds."""
    targets = []
    for pid in pids:
        try:
            targets.append((pid, psutil.Process(pid).create_time()))
            os.kill(pid, signal.SIGTERM)
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass
    deadline = time.monotonic() + grace
    for pid, created in targets:
        if not procs.wait_dead(pid, max(0.0, deadline - time.monotonic()), created):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            procs.wait_dead(pid, 5, created)
