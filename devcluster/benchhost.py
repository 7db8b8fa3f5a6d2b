"""One simulated KVM host on a network of its own, for benchmarks run by hand: libvirtd,
the guest bridge with its dnsmasq, kvmagent, and a callback receiver on the root side.
Everything goes with :meth:`down`."""

from __future__ import annotations

from pathlib import Path

from agentlib.receiver import CallbackReceiver
from devcluster import hostnet
from devcluster.kvmhost import add_guest_bridge, kvmagent_url, start_kvmagent
from devcluster.libvirtd import Libvirtd
from devcluster.simhost import SimHost


class BenchHost:
    def __init__(self, root: Path, name: str, prefix: str = "zb"):
        self.net = hostnet.HostNetwork(hostnet.free_prefix(prefix), hostnet.free_subnet())
        self.host = SimHost(name, root / name, self.net.host_ip(1), self.net.mgmt_bridge, {},
                            prefix=self.net.prefix)
        self.libvirtd = Libvirtd(self.host)
        self.receiver = CallbackReceiver(host=self.net.root_ip.split("/")[0])

    def up(self) -> None:
        self.net.up()
        self.host.start()
        self.libvirtd.start()
        add_guest_bridge(self.host)
        self.receiver.start()
        start_kvmagent(self.host)
        self.url = kvmagent_url(self.host)

    def down(self) -> None:
        self.receiver.stop()
        self.host.stop()
        self.net.down()
