"""The whole cloud on this machine, as ``make up`` runs it.

One directory holds everything: a Ceph cluster, the management/data/public bridges,
simulated KVM hosts each with its own libvirtd and a kvmagent inside, the coordinator and
the other agents on the management network's root address. ``up()`` builds it and then,
through the coordinator's API as an operator would (:mod:`devcluster.democloud`),
registers zone, cluster, hosts, Ceph storages, the flat L3 and the guest image, and
creates a demo VM; ``down()`` stops it by pid from the state in the directory (from any
process), ``status()`` says what runs where.

The root namespace holds the flat L3's gateway on the data bridge (a router on a real
L2), so ``ping`` and ``ssh`` reach the VMs from this machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from agentlib import jsonfile, shell
from devcluster import agents, democloud, guestdisk, hostnet, kvmhost, procs
from devcluster.ceph import CephCluster
from devcluster.guestconsole import parse_console
from devcluster.libvirtd import Libvirtd
from devcluster.simhost import SimHost

PREFIX = "zf"
MGMT_SUBNET = "10.99.0.0/24"
DEMO_USERDATA = "#cloud-config\\nhostname: demo"  # one line, as ZStack's CLI sends it
ROOT_SERVICES = ("coordinator", "cephagent", "sftpbsagent", "vragent", "consoleproxy")
OSD_BYTES = 8 << 30  # a sparse file: the cloud's Ceph capacity, not disk taken up front
DATA = ("devcluster.json", "services.json", "ceph", "hosts", "data", "log")  # reset removes


class DevCluster:
    def __init__(self, root: Path, hosts: int = 2, prefix: str = PREFIX,
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
        started = {p.name: p for p in self.services.load()}
        return bool(self._state()) and self.ceph.running() and all(
            h.running() for h in self.hosts()) and all(
            n in started and started[n].alive() for n in ROOT_SERVICES)

    def built(self) -> bool:
        """Whether a cloud was built here whose data is kept (see :meth:`up`)."""
        return "cloud" in self._state()

    def up(self, progress=print) -> None:
        """Bring everything up; a complete running cluster is left as it is.

        The first time, a new cloud is built. After ``down()`` (or a reboot: every process
        gone, nothing stopped), the same cloud comes back from the directory: Ceph's data
        (bluestore), the coordinator's database, the agents' data; the VMs that were
        Running are started again, with their addresses and disks.
        """
        if self.running():
            progress("already up")
            return
        self.down(progress=lambda _msg: None)  # what a failed run or a reboot left
        if self.built():
            if not self.ceph.persistent():
                raise RuntimeError(f"the cloud in {self.root} cannot come back: its Ceph "
                                   "data is gone; `make reset` starts a new one")
            progress(f"resuming the cloud in {self.root}")
        else:
            self._wipe()
            progress(f"building a new cloud in {self.root}")
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(self.root.stat().st_mode | 0o111)  # dnsmasq (nobody) reads below
        try:
            self._up(progress)
        except BaseException:
            progress("failed: taking down what was started"
                     + (" (the cloud's data is kept)" if self.built() else ""))
            self.down(progress)
            raise

    def _up(self, progress) -> None:
        hosts = self.hosts()
        resume = self.built()
        self._save_state(prefix=self.prefix, mgmt_subnet=self.net.mgmt_subnet,
                         hosts=[h.name for h in hosts])
        progress(f"network: bridges {self.net.mgmt_bridge} ({self.net.root_ip}), "
                 + ", ".join(self.net.bridges.values()))
        self.net.up()
        for name in ROOT_SERVICES:
            _check_port_free(self.mgmt_ip, agents.SERVICES[name].port, name)
        gateway = f"{democloud.GUEST_NET}.1/24"
        progress(f"network: {gateway} on {self.net.bridges['data']}: the flat L3's router")
        shell.run(["ip", "addr", "replace", gateway, "dev", self.net.bridges["data"]])
        if resume:
            progress("ceph: resuming 1 mon, 1 mgr, 1 OSD (bluestore: pools and images kept)")
            self.ceph.resume()
        else:
            progress(f"ceph: starting 1 mon, 1 mgr, 1 OSD (bluestore on a sparse "
                     f"{OSD_BYTES >> 30} GiB file)")
            self.ceph.start(objectstore="bluestore", osd_bytes=OSD_BYTES,
                            bind_address=self.mgmt_ip)  # qemu in the hosts opens RBD disks
        for host in hosts:
            progress(f"{host.name}: namespaces, NICs, libvirtd")
            host.start()
            Libvirtd(host).start()
        started = {}
        for name in ROOT_SERVICES:
            progress(f"{name}: starting on {self.mgmt_ip}:{agents.SERVICES[name].port}")
            extra = (["--ceph-conf", str(self.ceph.conf_path), "--file-url-roots",
                      str(kvmhost.GUEST_CACHE)] if name == "cephagent" else [])
            started[name] = self.services.add(procs.spawn(
                name, agents.argv(name, self.mgmt_ip, agents.SERVICES[name].port, self.root,
                                  *extra),
                self.root / "log" / f"{name}.out"))
        for name in ROOT_SERVICES:
            agents.wait_ready(name, self.url(name), started[name])
        api = democloud.HttpApi(self.url("coordinator"))
        if resume:
            # before any kvmagent runs, so no host has told the coordinator its VMs are gone
            was_running = [vm["uuid"] for vm in api.query("QueryVmInstance", state="Running")]
            self._save_state(resume=sorted({*self._state().get("resume", []), *was_running}))
        for host in hosts:
            progress(f"{host.name}: kvmagent on {kvmhost.kvmagent_url(host)}")
            democloud.prepare_kvm_host(host)
        if resume:
            self._resume_vms(api, hosts, progress)
            if not self._state().get("demo_vm"):  # the first up failed after the build
                self._create_demo_vm(api, hosts, progress)
            return
        progress("guest disk image (built once, then cached)")
        image = guestdisk.build(kvmhost.GUEST_CACHE).qcow2
        progress("coordinator: zone, cluster, hosts, Ceph storages, flat L3, image (API)")
        ids = democloud.build(api, hosts, self.url("cephagent"), image)
        self._save_state(cloud=ids.__dict__)
        self._create_demo_vm(api, hosts, progress)

    def _resume_vms(self, api: democloud.HttpApi, hosts: list[SimHost], progress) -> None:
        """Reconnect the hosts (each tells the coordinator its VMs are gone) and start the
        VMs that were Running again, each on a host the allocator picks, with its IP."""
        for host in api.query("QueryHost"):
            progress(f"coordinator: ReconnectHost {host['name']}")
            api("ReconnectHost", uuid=host["uuid"])
        pending = self._state().get("resume", [])
        progress(f"{len(pending)} VM(s) were running: starting them again")
        booting = {}
        for vm_uuid in pending:
            [vm] = api.query("QueryVmInstance", uuid=vm_uuid) or [None]
            if vm is None:
                continue
            offsets = {}  # the new boot's lease is what a console prints past its end now
            if vm["state"] != "Running":
                offsets = {h.name: _size(kvmhost.console_log(h, vm_uuid)) for h in hosts}
                reply = api.post("StartVmInstance", uuid=vm_uuid)
                if not reply.get("success"):
                    progress(f"VM {vm['name']} ({vm_uuid}) did not start: {reply.get('error')}")
                    continue
                vm = reply["inventory"]
            host = self._host_of(api, vm, hosts)
            booting[vm_uuid] = (vm, host, offsets.get(host.name, 0))
        for vm_uuid, (vm, host, offset) in booting.items():
            console = kvmhost.console_log(host, vm_uuid)
            ip = procs.wait_for(lambda c=console, o=offset: _lease_after(c, o), 180,
                                f"VM {vm['name']}'s DHCP lease")
            progress(f"VM {vm['name']} ({vm_uuid}): running on {host.name}, IP {ip}")
            if vm_uuid == (self._state().get("demo_vm") or {}).get("uuid"):
                self._save_state(demo_vm={"uuid": vm_uuid, "host": host.name})
        self._save_state(resume=[])

    @staticmethod
    def _host_of(api: democloud.HttpApi, vm: dict, hosts: list[SimHost]) -> SimHost:
        host_ip = api.query("QueryHost", uuid=vm["hostUuid"])[0]["managementIp"]
        return next(h for h in hosts if h.mgmt_address == host_ip)

    def _create_demo_vm(self, api: democloud.HttpApi, hosts: list[SimHost], progress) -> None:
        """CreateVmInstance with user data; wait until the guest has its lease and has
        read its user data from 169.254.169.254."""
        progress("demo VM: CreateVmInstance")
        ids = democloud.CloudIds(**self._state()["cloud"])
        vm = api("CreateVmInstance", **democloud.create_vm_body(
            ids, "demo", systemTags=[f"userdata::{DEMO_USERDATA}"]))["inventory"]
        host = self._host_of(api, vm, hosts)
        self._save_state(demo_vm={"uuid": vm["uuid"], "host": host.name})
        console = kvmhost.console_log(host, vm["uuid"])
        procs.wait_for(lambda: "user-data" in parse_console(console.read_text()).metadata,
                       180, "the demo VM's DHCP lease and user data")
        progress(f"demo VM {vm['uuid']}: running on {host.name}, "
                 f"IP {parse_console(console.read_text()).ip('eth0')}, user data read")

    def down(self, progress=print) -> None:
        """Stop everything (by pid, from the recorded state); idempotent. The cloud's data
        stays for the next ``up()``; :meth:`reset` removes it."""
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

    def reset(self, progress=print) -> None:
        """``down()``, then remove the cloud's data: the next ``up()`` builds a new one."""
        self.down(progress)
        if self.built():
            progress(f"removing the cloud in {self.root}: its database, Ceph data, hosts "
                     "and logs")
        self._wipe()

    def _wipe(self) -> None:
        """Remove what a cloud keeps here, and nothing else the directory may hold."""
        for sub in DATA:
            path = self.root / sub
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    @property
    def db_path(self) -> Path:
        """The coordinator's database (as ``agents.argv`` places its data dir)."""
        return self.root / "data" / "coordinator" / "zfleet.db"

    def status(self) -> dict:
        hosts = self.hosts() if self._state() else []
        demo = self._state().get("demo_vm")
        if demo:
            host = next(h for h in hosts if h.name == demo["host"])
            console = kvmhost.console_log(host, demo["uuid"])
            text = console.read_text(errors="replace") if console.exists() else ""
            report = parse_console(text)
            demo = {**demo, "lease": report.ip("eth0"), "console": str(console),
                    "userdata": report.metadata.get("user-data")}
        return {
            "demo_vm": demo,
            "dir": str(self.root),
            "database": str(self.db_path),
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
    if taken := procs.port_taken(address, port):
        raise RuntimeError(f"{name}: {taken}; is another zfleet devcluster up? (`make down`)")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _lease_after(console: Path, offset: int) -> str | None:
    """The guest's eth0 address from what its console printed past ``offset``."""
    if not console.exists():
        return None
    with open(console, "rb") as f:
        f.seek(offset)
        return parse_console(f.read().decode(errors="replace")).ip("eth0")
