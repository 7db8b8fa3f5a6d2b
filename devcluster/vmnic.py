"""A stand-in for a VM's NIC on a simulated host: a namespace with a veth into a bridge.

DHCP tests and benchmarks need many clients that come and go in milliseconds; a real
guest takes seconds to boot. Inside the host, namespace ``vm-<name>`` holds ``eth0``
(with the MAC the "VM" has) whose peer ``vn-<name>`` is a port of the bridge, and
:meth:`VmNic.lease` runs ``busybox udhcpc`` once on it and returns what it was offered.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from devcluster.simhost import SimHost

LEASE_TAG = "VMNIC-LEASE"
_SCRIPT = f"""#!/bin/sh
# udhcpc event script: print the lease (the NIC is not configured: nothing uses it)
[ "$1" = bound ] && echo "{LEASE_TAG} ip=$ip mask=$mask router=$router dns=$(echo $dns | tr ' ' ,) \
serverid=$serverid hostname=$hostname lease=$lease"
exit 0
"""


@dataclass
class Lease:
    ip: str
    mask: str
    router: str
    dns: str
    serverid: str
    hostname: str
    seconds: float  # how long udhcpc took, start to exit

    @classmethod
    def parse(cls, stdout: str, seconds: float) -> Lease | None:
        for line in stdout.splitlines():
            if line.startswith(LEASE_TAG + " "):
                fields = dict(kv.partition("=")[::2] for kv in line.split()[1:])
                return cls(fields["ip"], fields["mask"], fields["router"], fields["dns"],
                           fields["serverid"], fields["hostname"], seconds)
        return None


class VmNic:
    def __init__(self, host: SimHost, name: str, bridge: str, mac: str):
        if len(f"vn-{name}") > 15:
            raise ValueError(f"VM NIC name {name!r}: at most 12 characters")
        self.host = host
        self.name = name
        self.bridge = bridge
        self.mac = mac
        self.netns = f"vm-{name}"
        self.port = f"vn-{name}"
        self.script = host.dir / "vmnic-udhcpc.sh"

    def create(self) -> VmNic:
        if not self.script.exists():
            self.script.write_text(_SCRIPT)
            self.script.chmod(0o755)
        run = self.host.run
        run(["ip", "netns", "add", self.netns])
        run(["ip", "link", "add", self.port, "type", "veth", "peer", "name", "eth0",
             "netns", self.netns])
        run(["ip", "link", "set", "dev", self.port, "master", self.bridge, "up"])
        run(["ip", "-n", self.netns, "link", "set", "dev", "eth0", "address", self.mac, "up"])
        return self

    def lease(self, tries: int = 3) -> Lease | None:
        """One DHCP exchange (``tries`` discovers, 1 s apart); None if nobody answered."""
        started = time.monotonic()
        res = self.host.run(["ip", "netns", "exec", self.netns, "busybox", "udhcpc", "-n",
                             "-q", "-f", "-i", "eth0", "-s", str(self.script), "-t",
                             str(tries), "-T", "1"], check=False, timeout=tries + 10)
        return Lease.parse(res.stdout, time.monotonic() - started)

    def delete(self) -> None:
        self.host.run(["ip", "link", "del", "dev", self.port], check=False)
        self.host.run(["ip", "netns", "delete", self.netns], check=False)
