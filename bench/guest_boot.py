#!/usr/bin/env python3
"""Test guest boot through kvmagent: from its disk image (BIOS -> SYSLINUX -> vmlinuz) vs
direct kernel boot (the baseline: qemu loads the ELF vmlinux itself), same run.

On one simulated host, each round starts one guest of each kind, one after the other
(order alternates between rounds; a booting TCG guest takes a whole host CPU), and
times POST /vm/start -> the agent's callback, and -> the guest's DHCP lease on its
serial console. The disk guest's root volume is a 64 MiB qcow2 backed by the image,
as a root volume cloned from a cached image is. Run as root:
.venv/bin/python bench/guest_boot.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests

from agentlib.shell import run
from devcluster import guestdisk, guestimage, procs
from devcluster.benchhost import BenchHost
from devcluster.guestconsole import parse_console
from devcluster.kvmhost import (
    GUEST_CACHE,
    console_log,
    guest_vm_cmd,
)

# kernel: direct boot of the ELF vmlinux (how guests boot today: the baseline);
# vmlinuz: direct boot of the compressed kernel the disk holds (isolates the disk's own cost)
KINDS = {"kernel": "direct vmlinux (baseline)", "vmlinuz": "direct vmlinuz",
         "disk": "disk image (BIOS)"}
# console markers: SYSLINUX's banner (disk boot only), the guest's /init
PHASES = (("loader", "SYSLINUX"), ("init", "ZFLEET-"))


class Bench(BenchHost):
    def __init__(self, root: Path):
        super().__init__(root, "gboot", prefix="zg")
        self.image = guestimage.build(GUEST_CACHE)
        self.disk = guestdisk.build(GUEST_CACHE)
        self.macs = iter(range(1, 1 << 16))

    def start_cmd(self, kind: str) -> dict:
        mac = next(self.macs)
        cmd = guest_vm_cmd(self.host, self.image, uuid.uuid4().hex,
                           f"52:54:00:30:{mac >> 8:02x}:{mac & 255:02x}")
        if kind == "vmlinuz":
            cmd["bootKernel"] = str(self.disk.vmlinuz)
        if kind == "disk":
            for key in ("bootKernel", "bootInitrd", "bootCmdline"):
                del cmd[key]
            run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", self.disk.qcow2,
                 "-F", "qcow2", cmd["rootVolume"]["installPath"], "64M"])  # fmt: skip
        return cmd

    def post(self, path: str, body: dict) -> str:
        taskuuid = uuid.uuid4().hex
        requests.post(self.url + path, json=body, timeout=30, headers={
            "taskuuid": taskuuid, "callbackurl": self.receiver.url}).raise_for_status()
        return taskuuid

    def callback(self, taskuuid: str) -> float:
        [cb] = self.receiver.wait(timeout=120, taskuuid=taskuuid)
        if not cb.body["success"]:
            raise RuntimeError(cb.body["error"])
        return cb.at

    def boot(self, kind: str) -> dict[str, float]:
        """Seconds from POST /vm/start to its callback and to the DHCP lease line."""
        cmd = self.start_cmd(kind)
        vm = cmd["vmInstanceUuid"]
        log = console_log(self.host, vm)
        started = time.monotonic()
        task = self.post("/vm/start", cmd)

        seen: dict[str, float] = {}

        def leased() -> bool:
            text = log.read_text(errors="replace") if log.exists() else ""
            for phase, marker in PHASES:
                if marker in text:
                    seen.setdefault(phase, time.monotonic() - started)
            return "eth0" in parse_console(text).leases

        procs.wait_for(leased, 120, f"{kind} guest's DHCP lease", interval=0.05)
        seen["lease"] = time.monotonic() - started
        seen["callback"] = self.callback(task) - started
        self.callback(self.post("/vm/destroy", {"uuid": vm}))
        return seen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds (median shown)")
    args = ap.parse_args()
    results: dict[str, list[dict[str, float]]] = {k: [] for k in KINDS}
    with tempfile.TemporaryDirectory(prefix="zg", dir="/tmp") as tmp:
        bench = Bench(Path(tmp))
        try:
            bench.up()
            for kind in KINDS:  # warm-up: page cache, first qemu start
                bench.boot(kind)
            for i in range(args.rounds):
                order = list(KINDS) if i % 2 == 0 else list(KINDS)[::-1]
                for kind in order:
                    results[kind].append(bench.boot(kind))
                    print(f"round {i + 1} {kind:7} lease {results[kind][-1]['lease']:.2f}s",
                          flush=True)
        finally:
            bench.down()
    print(f"\nTest guest boot through kvmagent on TCG: seconds from POST /vm/start, median "
          f"of {args.rounds} (min-max); disk image {bench.disk.size >> 20} MiB")
    columns = ("callback", "loader", "init", "lease")
    print(f"{'boot':26}" + "".join(f"{c:>19}" for c in columns))
    lease = {}
    for kind, label in KINDS.items():
        row = f"{label:26}"
        for key in columns:
            vals = [r[key] for r in results[kind] if key in r]
            cell = f"{statistics.median(vals):.2f} ({min(vals):.2f}-{max(vals):.2f})" \
                if vals else "-"
            row += f"{cell:>19}"
        lease[kind] = statistics.median(r["lease"] for r in results[kind])
        print(row)
    print(f"disk boot: {lease['disk'] - lease['kernel']:+.2f}s to the lease vs direct vmlinux "
          f"({lease['disk'] / lease['kernel']:.2f}x), {lease['disk'] - lease['vmlinuz']:+.2f}s "
          "vs direct vmlinuz (BIOS + SYSLINUX reading the disk)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
