"""A simulated KVM host's guest side: a bridge with DHCP for guests, and kvmagent.

Used by ``make up``, the kvmagent tests and the VM benchmarks, so all three run the
agent the same way: inside the host's namespaces, on TCG (``--domain-type qemu``: KVM
guests do not boot on this machine kind), against the host's own libvirtd.
"""

from __future__ import annotations

import requests

from devcluster import agents, procs
from devcluster.simhost import SimHost

GUEST_BRIDGE = "br0"
GUEST_NET = "10.250.0"  # inside each host only: hosts' guest bridges are separate L2s
KVMAGENT_PORT = agents.SERVICES["kvmagent"].port


def add_guest_bridge(host: SimHost, bridge: str = GUEST_BRIDGE, net: str = GUEST_NET) -> None:
    """A bridge in the host at ``<net>.1/24`` with a dnsmasq handing out ``<net>.10-200``."""
    host.run(["ip", "link", "add", bridge, "type", "bridge"])
    host.run(["ip", "addr", "add", f"{net}.1/24", "dev", bridge])
    host.run(["ip", "link", "set", bridge, "up"])
    host.spawn(f"dnsmasq-{bridge}", [
        "dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
        "--port=0", "--no-resolv", "--no-ping", "--leasefile-ro", "--bind-interfaces",
        f"--interface={bridge}", f"--dhcp-range={net}.10,{net}.200,1h",
    ], host.dir / "log" / f"dnsmasq-{bridge}.log")


def kvmagent_url(host: SimHost) -> str:
    return f"http://{host.mgmt_address}:{KVMAGENT_PORT}"


def start_kvmagent(host: SimHost, *extra: str) -> procs.Proc:
    """Run kvmagent in ``host`` (data dir ``<host dir>/data/kvmagent``) until it answers."""
    proc = host.spawn("kvmagent", agents.argv(
        "kvmagent", "0.0.0.0", KVMAGENT_PORT, host.dir, "--domain-type", "qemu",
        "--libvirt-uri", "qemu:///system", *extra), host.dir / "log" / "kvmagent.out")
    url = kvmagent_url(host)
    procs.wait_for(lambda: requests.post(url + "/host/echo", timeout=1).ok, 30,
                   f"kvmagent in {host.name}", watch=[proc])
    return proc
