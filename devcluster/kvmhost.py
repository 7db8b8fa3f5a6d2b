"""A simulated KVM host's guest side: a bridge with DHCP for guests, and kvmagent.

Used by ``make up``, the kvmagent tests and the VM benchmarks, so all three run the
agent the same way: inside the host's namespaces, on TCG (``--domain-type qemu``: KVM
guests do not boot on this machine kind), against the host's own libvirtd.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import requests

from agentlib import shell
from devcluster import agents, procs
from devcluster.guestimage import MIN_MEMORY_MIB, GuestImage
from devcluster.simhost import SimHost

GUEST_BRIDGE = "br0"
GUEST_NET = "10.250.0"  # inside each host only: hosts' guest bridges are separate L2s
GUEST_CACHE = Path("/var/cache/zfleet/guest")  # the test guest image, built once a machine
KVMAGENT_PORT = agents.SERVICES["kvmagent"].port


def add_guest_bridge(host: SimHost, bridge: str = GUEST_BRIDGE, net: str = GUEST_NET,
                     static: dict[str, str] | None = None) -> None:
    """A bridge in the host at ``<net>.1/24`` (the guests' router) with a dnsmasq handing
    out ``<net>.10-200``, or, with ``static`` ({MAC: IP}), only those addresses."""
    host.run(["ip", "link", "add", bridge, "type", "bridge"])
    host.run(["ip", "addr", "add", f"{net}.1/24", "dev", bridge])
    host.run(["ip", "link", "set", bridge, "up"])
    if static:
        ranges = [f"--dhcp-range={net}.0,static,255.255.255.0"] + [
            f"--dhcp-host={mac},{ip},infinite" for mac, ip in static.items()]
    else:
        ranges = [f"--dhcp-range={net}.10,{net}.200,1h"]
    host.spawn(f"dnsmasq-{bridge}", [
        "dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
        "--port=0", "--no-resolv", "--no-ping", "--leasefile-ro", "--bind-interfaces",
        f"--interface={bridge}", f"--dhcp-option=3,{net}.1", *ranges,
    ], host.dir / "log" / f"dnsmasq-{bridge}.log")


def kvmagent_url(host: SimHost) -> str:
    return f"http://{host.mgmt_address}:{KVMAGENT_PORT}"


def storage_dir(host: SimHost) -> Path:
    """``host``'s local storage, set up by :func:`start_kvmagent`: test VMs' volumes
    and boot files live there, as kvmagent only opens files inside a storage root. It is
    the agent's ``--storage-roots`` (a ``--storage-roots`` in ``extra`` must include
    it)."""
    return host.dir / "storage"


def start_kvmagent(host: SimHost, *extra: str) -> procs.Proc:
    """Run kvmagent in ``host`` (data dir ``<host dir>/data/kvmagent``) until it answers."""
    proc = host.spawn("kvmagent", agents.argv(
        "kvmagent", "0.0.0.0", KVMAGENT_PORT, host.dir, "--domain-type", "qemu",
        "--libvirt-uri", "qemu:///system", "--storage-roots", str(storage_dir(host)),
        *extra), host.dir / "log" / "kvmagent.out")
    url = kvmagent_url(host)
    procs.wait_for(lambda: requests.post(url + "/host/echo", timeout=1).ok, 30,
                   f"kvmagent in {host.name}", watch=[proc])
    reply = requests.post(url + "/localstorage/init", json={"path": str(storage_dir(host))},
                          timeout=30).json()
    if not reply["success"]:
        raise RuntimeError(f"kvmagent in {host.name}: {reply['error']}")
    return proc


def _in_storage(host: SimHost, path: Path) -> Path:
    """``path`` (a boot file of the guest image) linked into ``host``'s storage."""
    linked = storage_dir(host) / "images" / path.name
    if not linked.exists():
        linked.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, linked)
        except OSError:  # another filesystem
            shutil.copyfile(path, linked)
    return linked


def guest_vm_cmd(host: SimHost, image: GuestImage, vm_uuid: str, mac: str,
                 name: str = "", memory_mib: int = MIN_MEMORY_MIB) -> dict:
    """A StartVmCmd for the test guest on ``host``: kernel boot from ``image``, a new 64 MiB
    qcow2 root volume under ``<storage>/volumes``, one NIC on the guest bridge."""
    root = storage_dir(host) / "volumes" / f"{vm_uuid}-root.qcow2"
    root.parent.mkdir(parents=True, exist_ok=True)
    shell.run(["qemu-img", "create", "-q", "-f", "qcow2", str(root), "64M"])
    return {
        "vmInstanceUuid": vm_uuid, "vmName": name or f"guest {vm_uuid[:6]}",
        "memory": memory_mib << 20, "cpuNum": 1,
        "rootVolume": {"volumeUuid": uuid.uuid4().hex, "deviceId": 0,
                       "installPath": str(root)},
        "nics": [{"uuid": uuid.uuid4().hex, "mac": mac, "bridgeName": GUEST_BRIDGE,
                  "deviceId": 0}],
        "bootKernel": str(_in_storage(host, image.kernel)),
        "bootInitrd": str(_in_storage(host, image.initrd)),
        "bootCmdline": image.cmdline,
    }


def console_log(host: SimHost, vm_uuid: str) -> Path:
    """Where kvmagent (run by :func:`start_kvmagent`) logs the VM's serial console."""
    return host.dir / "data" / "kvmagent" / "consoles" / f"{vm_uuid}.log"
