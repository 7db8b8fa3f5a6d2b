"""The whole cloud on this machine, as ``make up`` runs it.

One directory holds everything: a Ceph cluster, the management/data/public bridges,
simulated KVM hosts each with its own libvirtd and a kvmagent inside, the coordinator and
the other agents on the management network's root address. ``up()`` builds it, ``down()``
stops it by pid from the state in the directory (from any process), ``status()`` says
what runs where.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import requests

from agentlib import jsonfile
from agentlib.receiver import CallbackReceiver
from devcluster import agents, guestimage, hostnet, kvmhost, procs
from devcluster.ceph import CephCluster
from devcluster.guestconsole import parse_console
from devcluster.libvirtd import Libvirtd
from devcluster.simhost import SimHost

PREFIX = "zf"
MGMT_SUBNET = "10.99.0.0/24"
DEMO_MAC = "52:54:00:99:00:01"
ROOT_SERVICES = ("coordinator", "cephagent", "sftpbsagent", "vragent", "consoleproxy")


class DevCluster:
    def __init__(self, root: Path, hosts: int = 1, prefix: str = PREFIX,
                 mgmt_subnet: str = MGMT_SUBNET):
        """``prefix`` and ``mgmt_subnet`` keep two clusters apart (link names, addresses);
        the services' ports do not clash, as each binds its own cluster's mgmt address.
        A directory that already holds a cluster keeps the settings it was made with."""
        self.root = Path(root).absolute()
        self.state_path = self.root / "devcluster.json"
        state = self._state()
        self.host_count = hosts
        self.prefix = state.get("prefix", prefix)
        self.net = hostnet.HostNetwork(self.prefix, state.get("mgmt_subnet", mgmt_subnet))
        self.ceph = CephCluster(self.root / "ceph")
        self.services = procs.Registry(self.root / "services.json")

    # -- parts ---------------------------------------------------------------------------
    @property
    def mgmt_ip(self) -> str:
        return self.net.root_ip.split("/")[0]

    def hosts(self) -> list[SimHost]:
        names = self._state().get("hosts") or [f"host{n}" for n in
                                               range(1, self.host_count + 1)]
        return [SimHost(name, self.root / "hosts" / name, self.net.host_ip(n),
                        self.net.mgmt_bridge, self.net.bridges, prefix=self.prefix)
                for n, name in enumerate(names, start=1)]

    def url(self, service: str, host: SimHost | None = None) -> str:
        if host is not None:
            return kvmhost.kvmagent_url(host)
        return f"http://{self.mgmt_ip}:{agents.SERVICES[service].port}"

    # -- lifecycle -------------------------------------------------------------------------
    def running(self) -> bool:
        return bool(self._state()) and self.ceph.running() and all(
            h.running() for h in self.hosts()) and all(p.alive() for p in self.services.load())

    def up(self, progress=print) -> None:
        """Bring everything up; a complete running cluster is left as it is."""
        if self.running():
            progress("already up")
            return
        self.down(progress=lambda _msg: None)  # whatever a failed or partial run left
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._up(progress)
        except BaseException:
            progress("failed: taking down what was started")
            self.down(progress)
            raise

    def _up(self, progress) -> None:
        hosts = self.hosts()
        self._save_state(prefix=self.prefix, mgmt_subnet=self.net.mgmt_subnet,
                         hosts=[h.name for h in hosts],
                         host_uuids={h.name: uuid.uuid4().hex for h in hosts})
        progress(f"network: bridges {self.net.mgmt_bridge} ({self.net.root_ip}), "
                 + ", ".join(self.net.bridges.values()))
        self.net.up()
        for name in ROOT_SERVICES:
            _check_port_free(self.mgmt_ip, agents.SERVICES[name].port, name)
        progress("ceph: starting 1 mon, 1 mgr, 1 OSD (memstore)")
        self.ceph.start()
        for host in hosts:
            progress(f"{host.name}: namespaces, NICs, libvirtd")
            host.start()
            Libvirtd(host).start()
        started = {}
        for name in ROOT_SERVICES:
            progress(f"{name}: starting on {self.mgmt_ip}:{agents.SERVICES[name].port}")
            extra = ["--ceph-conf", str(self.ceph.conf_path)] if name == "cephagent" else []
            started[name] = self.services.add(procs.spawn(
                name, agents.argv(name, self.mgmt_ip, agents.SERVICES[name].port, self.root,
                                  *extra),
                self.root / "log" / f"{name}.out"))
        for name in ROOT_SERVICES:
            agents.wait_ready(name, self.url(name), started[name])
        for host in hosts:
            progress(f"{host.name}: guest bridge {kvmhost.GUEST_BRIDGE} with DHCP, kvmagent "
                     f"on {kvmhost.kvmagent_url(host)}")
            kvmhost.add_guest_bridge(host)
            kvmhost.start_kvmagent(host)
            self._connect(host)
        self._start_demo_vm(hosts[0], progress)

    def _start_demo_vm(self, host: SimHost, progress) -> None:
        """Start the test guest on ``host`` through its kvmagent, as the coordinator will
        (async /vm/start, reply at a callback URL), and wait for its DHCP lease."""
        progress("demo VM: guest image (built once, then cached)")
        image = guestimage.build(kvmhost.GUEST_CACHE)
        vm = uuid.uuid4().hex
        self._save_state(demo_vm={"uuid": vm, "host": host.name})
        cmd = kvmhost.guest_vm_cmd(host, image, vm, DEMO_MAC, name="demo")
        progress(f"demo VM {vm}: /vm/start on {host.name}'s kvmagent")
        with CallbackReceiver(host=self.mgmt_ip) as receiver:
            taskuuid = uuid.uuid4().hex
            requests.post(kvmhost.kvmagent_url(host) + "/vm/start", json=cmd, timeout=10,
                          headers={"taskuuid": taskuuid, "callbackurl": receiver.url}
                          ).raise_for_status()
            [reply] = receiver.wait(timeout=120, taskuuid=taskuuid)
        if not reply.body["success"]:
            raise RuntimeError(f"demo VM did not start: {reply.body['error']}")
        console = kvmhost.console_log(host, vm)
        lease = procs.wait_for(lambda: parse_console(console.read_text()).ip("eth0"), 120,
                               "the demo VM's DHCP lease")
        progress(f"demo VM {vm}: running, DHCP lease {lease}")

    def _connect(self, host: SimHost) -> None:
        """Tell the host's kvmagent who it is and where the coordinator takes reports."""
        host_uuid = self._state()["host_uuids"][host.name]
        reply = requests.post(self.url("kvmagent", host) + "/host/connect", timeout=10, json={
            "hostUuid": host_uuid, "sendCommandUrl": self.url("coordinator") + "/report"}).json()
        if not reply["success"]:
            raise RuntimeError(f"{host.name}: kvmagent connect failed: {reply['error']}")

    def down(self, progress=print) -> None:
        """Stop everything (by pid, from the recorded state); idempotent."""
        if self.services.load():
            progress("agents and coordinator: stopping")
        self.services.stop_all()
        for host in self.hosts():
            if host.running():
                progress(f"{host.name}: stopping kvmagent, libvirtd and its VMs, namespaces")
            host.stop()
        if self.ceph.running():
            progress("ceph: stopping")
        self.ceph.stop()
        self.net.down()
        self.state_path.unlink(missing_ok=True)

    def status(self) -> dict:
        hosts = self.hosts() if self._state() else []
        demo = self._state().get("demo_vm")
        if demo:
            host = next(h for h in hosts if h.name == demo["host"])
            console = kvmhost.console_log(host, demo["uuid"])
            text = console.read_text(errors="replace") if console.exists() else ""
            demo = {**demo, "lease": parse_console(text).ip("eth0"), "console": str(console)}
        return {
            "demo_vm": demo,
            "dir": str(self.root),
            "running": self.running(),
            "ceph": self.ceph.status() if self.ceph.running() else {"running": False},
            "hosts": {h.name: {**h.status(), "libvirt": Libvirtd(h).status(),
                               "kvmagent": self.url("kvmagent", h)} for h in hosts},
            "services": {p.name: {"pid": p.pid, "alive": p.alive(), "url": self.url(p.name),
                                  "log": str(self.root / "log" / f"{p.name}.log")}
                         for p in self.services.load()},
        }

    def _state(self) -> dict:
        return jsonfile.read(self.state_path, {})

    def _save_state(self, **values) -> None:
        jsonfile.write(self.state_path, {**self._state(), **values})


def _check_port_free(address: str, port: int, name: str) -> None:
    with socket.socket() as s:
        try:
            s.bind((address, port))
        except OSError as exc:
            raise RuntimeError(f"{name}: port {port} on {address} is taken ({exc}); "
                               "is another zfleet devcluster up? (`make down`)") from None
