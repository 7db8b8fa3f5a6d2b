#!/usr/bin/env python3
"""Local storage volume migration through kvmagent vs plain scp of the same file, same run.

Two simulated hosts: A runs libvirtd and kvmagent, B runs sshd with A's agent key
authorized. A 256 MiB volume (every byte written) is migrated from A's local storage to
B's with POST /localstorage/volume/migrate, timed until its callback arrives (copy +
sha256 on both ends + rebase + rename + chain check); then the same file is copied with
plain ``scp`` from inside A with the same key and options. Throughput in MiB/s of the
file's size; median of the rounds.

Run as root: .venv/bin/python bench/volume_migrate.py [--rounds 3] [--size-mib 256]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests

from agentlib import shell
from agentlib.receiver import CallbackReceiver
from agentlib.ssh import Remote, SshIdentity
from devcluster import hostnet
from devcluster.kvmhost import kvmagent_url, start_kvmagent, storage_dir
from devcluster.libvirtd import Libvirtd
from devcluster.simhost import SimHost
from devcluster.sshd import authorize_agent, start_sshd

MIB = 1 << 20


class Bench:
    def __init__(self, root: Path, size_mib: int):
        self.net = hostnet.HostNetwork(hostnet.free_prefix("zb"), hostnet.free_subnet())
        self.a = SimHost("a", root / "a", self.net.host_ip(1), self.net.mgmt_bridge, {},
                         prefix=self.net.prefix)
        self.b = SimHost("b", root / "b", self.net.host_ip(2), self.net.mgmt_bridge, {},
                         prefix=self.net.prefix)
        self.receiver = CallbackReceiver(host=self.net.root_ip.split("/")[0])
        self.a_root, self.b_root = (storage_dir(h) / "localstorage" for h in (self.a, self.b))
        self.volume = self.a_root / "rootVolumes" / "bench.qcow2"
        self.size_mib = size_mib

    def up(self) -> None:
        self.net.up()
        self.a.start()
        self.b.start()
        Libvirtd(self.a).start()
        start_kvmagent(self.a)
        self.receiver.start()
        self.url = kvmagent_url(self.a)
        start_sshd(self.b)
        authorize_agent(self.url, self.b)
        self.call("/localstorage/init", {"path": str(self.a_root)})
        self.b_root.mkdir(parents=True)
        self.volume.parent.mkdir(parents=True)
        shell.run(["qemu-img", "create", "-q", "-f", "qcow2", self.volume, f"{self.size_mib}M"])
        shell.run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {self.size_mib}M",
                   self.volume], timeout=300)
        self.identity = SshIdentity(self.a.dir / "data" / "kvmagent" / "ssh")

    def down(self) -> None:
        self.receiver.stop()
        self.b.stop()
        self.a.stop()
        self.net.down()

    def call(self, path: str, body: dict) -> dict:
        reply = requests.post(self.url + path, json=body, timeout=30).json()
        if not reply["success"]:
            raise RuntimeError(f"{path}: {reply['error']}")
        return reply

    def agent_migrate(self, dst_root: Path) -> float:
        dst_root.mkdir()
        task = uuid.uuid4().hex
        started = time.monotonic()
        requests.post(self.url + "/localstorage/volume/migrate", timeout=30, json={
            "srcInstallPath": str(self.volume), "dstHostIp": self.b.mgmt_address,
            "dstStorageRoot": str(dst_root)},
            headers={"taskuuid": task, "callbackurl": self.receiver.url}).raise_for_status()
        [cb] = self.receiver.wait(timeout=600, taskuuid=task)
        if not cb.body["success"]:
            raise RuntimeError(f"migrate failed: {cb.body['error']}")
        return cb.at - started

    def plain_scp(self, dst: Path) -> float:
        remote = Remote(self.identity, self.b.mgmt_address)
        argv = ["scp", "-s", "-p", "-q", *remote.ssh_options(), str(self.volume),
                f"root@{self.b.mgmt_address}:{dst}"]
        started = time.monotonic()
        self.a.run(argv, timeout=600)
        return time.monotonic() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=256)
    args = ap.parse_args()
    agent, scp = [], []
    with tempfile.TemporaryDirectory(prefix="zb", dir="/tmp") as tmp:
        bench = Bench(Path(tmp), args.size_mib)
        try:
            bench.up()
            size = bench.volume.stat().st_size
            for i in range(args.rounds):
                agent.append(bench.agent_migrate(bench.b_root / f"agent{i}"))
                scp.append(bench.plain_scp(bench.b_root / f"scp{i}.qcow2"))
        finally:
            bench.down()
    print(f"volume file {size / MIB:.1f} MiB, {args.rounds} rounds (median; min-max)")
    for name, times in (("kvmagent migrate", agent), ("plain scp", scp)):
        rates = sorted(size / MIB / t for t in times)
        print(f"{name:17} {statistics.median(times):6.2f}s  {statistics.median(rates):7.1f} "
              f"MiB/s  ({rates[0]:.1f}-{rates[-1]:.1f})")
    print(f"agent / scp time: {statistics.median(agent) / statistics.median(scp):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
