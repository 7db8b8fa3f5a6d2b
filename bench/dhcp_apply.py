#!/usr/bin/env python3
"""DHCP batchApply through kvmagent vs writing the hosts file and SIGHUP by hand, same run.

One simulated host, one DHCP namespace (a /16, so 10,000 VMs fit), one dnsmasq. Each
round starts from an empty hosts file and adds N new entries (new VMs):

- agent: POST /flatnetworkprovider/dhcp/batchApply (body encoded beforehand), timed until
  the reply, which comes once dnsmasq has re-read its hosts file;
- raw: write the same N lines to a temp file, rename it over the hosts file, SIGHUP the
  same dnsmasq, and wait for the same "read <hosts file>" line in its log.

Then the lease time: udhcpc in 20 "VM NIC" namespaces, with 10,000 entries loaded.
Target (issue #4): agent <= 2 x raw. Run as root:
.venv/bin/python bench/dhcp_apply.py [--rounds 5] [--counts 1000,10000] [--leases 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests

from devcluster import hostnet
from devcluster.kvmhost import kvmagent_url, start_kvmagent
from devcluster.simhost import SimHost
from devcluster.vmnic import VmNic
from kvmagent.drivers.dnsmasq import Dnsmasq, Lease, render_hosts

BRIDGE = "br-data"
NS = f"{BRIDGE}_{uuid.uuid4().hex}"
NETMASK, SERVER, GATEWAY = "255.255.0.0", "10.60.0.2", "10.60.0.1"
DHCP = "/flatnetworkprovider/dhcp"


def entries(n: int, first: int = 0) -> list[dict]:
    """``n`` VM NICs numbered from ``first``: 52:54:01:xx:xx:xx at 10.60.1.0 onwards."""
    out = []
    for i in range(first, first + n):
        out.append({"namespaceName": NS, "bridgeName": BRIDGE,
                    "mac": f"52:54:01:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                    "ip": f"10.60.{1 + (i >> 8)}.{i & 255}", "netmask": NETMASK,
                    "gateway": GATEWAY, "dns": ["10.60.0.53"], "hostname": f"vm-{i}",
                    "isDefaultL3Network": True})
    return out


class Bench:
    def __init__(self, root: Path):
        self.net = hostnet.HostNetwork(hostnet.free_prefix("zb"), hostnet.free_subnet())
        self.host = SimHost("dhcpb", root / "dhcpb", self.net.host_ip(1), self.net.mgmt_bridge,
                            {"data": self.net.bridges["data"]}, prefix=self.net.prefix)
        root.chmod(0o711)  # dnsmasq reads the agent's files as nobody
        self.dnsmasq = Dnsmasq(self.host.dir / "data" / "kvmagent" / "dhcp" / NS, NS)

    def up(self) -> None:
        self.net.up()
        self.host.start()
        start_kvmagent(self.host)
        self.url = kvmagent_url(self.host)
        self.call("/network/l2novlan/createbridge", {"physicalInterfaceName": "eth1",
                                                     "bridgeName": BRIDGE})
        self.call(f"{DHCP}/prepare", {"bridgeName": BRIDGE, "namespaceName": NS,
                                      "dhcpServerIp": SERVER, "dhcpNetmask": NETMASK})

    def down(self) -> None:
        self.host.stop()
        self.net.down()

    def call(self, path: str, body: dict | bytes) -> dict:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = requests.post(self.url + path, data=data, timeout=120,
                              headers={"content-type": "application/json"})
        reply.raise_for_status()
        if not reply.json()["success"]:
            raise RuntimeError(f"{path}: {reply.json()['error']}")
        return reply.json()

    def empty(self) -> None:
        self.call(f"{DHCP}/flush", {"namespaceName": NS})

    def agent(self, batch: list[dict]) -> float:
        self.empty()
        body = json.dumps({"dhcp": batch}).encode()
        started = time.monotonic()
        reply = self.call(f"{DHCP}/batchApply", body)["namespaces"][NS]
        elapsed = time.monotonic() - started
        assert reply["reload"] == "reload" and reply["entries"] == len(batch), reply
        return elapsed

    def raw(self, batch: list[dict]) -> float:
        self.empty()
        text = render_hosts(Lease(e["mac"], e["ip"], e["hostname"]) for e in batch)
        hosts, log = self.dnsmasq.hosts, self.dnsmasq.log
        pid = self.dnsmasq.pid()
        offset = log.stat().st_size
        started = time.monotonic()
        fd, tmp = tempfile.mkstemp(dir=hosts.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, hosts)
        os.kill(pid, signal.SIGHUP)
        marker = f"read {hosts}\n"
        while True:
            with open(log) as f:
                f.seek(offset)
                if marker in f.read():
                    break
            time.sleep(0.002)
        return time.monotonic() - started

    def leases(self, count: int, background: int) -> list[float]:
        nics = [VmNic(self.host, f"b{i}", BRIDGE, f"52:54:02:00:00:{i:02x}").create()
                for i in range(count)]
        batch = entries(background) + [
            {**e, "mac": nic.mac} for e, nic in zip(entries(count, background), nics, strict=True)]
        self.call(f"{DHCP}/batchApply", {"dhcp": batch, "rebuild": True})
        times = []
        for nic, e in zip(nics, batch[background:], strict=True):
            lease = nic.lease()
            if lease is None or lease.ip != e["ip"]:
                raise RuntimeError(f"{nic.name}: expected {e['ip']}, got {lease}")
            times.append(lease.seconds)
        return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds per count (median shown)")
    ap.add_argument("--counts", default="1000,10000", help="entries per batch")
    ap.add_argument("--leases", type=int, default=20, help="udhcpc clients for lease time")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    results: dict[int, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="zb", dir="/tmp") as tmp:
        bench = Bench(Path(tmp))
        try:
            bench.up()
            # warm-up; the first entries also teach the L3's options (a restart)
            bench.call(f"{DHCP}/batchApply", {"dhcp": entries(100)})
            for n in counts:
                batch = entries(n)
                results[n] = {"agent": [], "raw": []}
                for i in range(args.rounds):  # alternate which goes first
                    order = ("agent", "raw") if i % 2 == 0 else ("raw", "agent")
                    for way in order:
                        results[n][way].append(getattr(bench, way)(batch))
            lease_times = bench.leases(args.leases, max(counts))
        finally:
            bench.down()
    print(f"{'entries':>8} {'agent':>9} {'raw':>9} {'ratio':>6} {'target':>6}  verdict   "
          f"(median of {args.rounds}; both until dnsmasq has re-read the hosts file)")
    for n, r in results.items():
        agent, raw = statistics.median(r["agent"]), statistics.median(r["raw"])
        print(f"{n:>8} {agent * 1000:7.1f}ms {raw * 1000:7.1f}ms {agent / raw:6.2f} "
              f"{'2.00':>6}  {'ok' if agent <= 2 * raw else 'OVER'}")
    lease_times.sort()
    print(f"lease (udhcpc discover->ack, {len(lease_times)} clients, {max(counts)} entries "
          f"loaded): p50 {statistics.median(lease_times) * 1000:.0f}ms, "
          f"max {lease_times[-1] * 1000:.0f}ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
