#!/usr/bin/env python3
"""VM start/destroy through kvmagent vs raw libvirt, on a simulated host, same run.

Agent: POST /vm/start (async) for N VMs at once, timed until the last callback arrives;
then /vm/destroy the same way. Raw: the very domain XML the agent generates (kvmagent's
own StartVmCmd -> domain translation), given to libvirt's createXML from N threads over
one connection, then virDomainDestroy. createXML is what the agent calls (zfleet VMs are
transient domains); define+create is also printed for reference.

Target (issue #3): agent time <= 1.10 x raw + 50 ms, for 1 and 8 concurrent guests. Both
guests that idle (SeaBIOS with nothing to boot: the agent's own cost) and guests that boot
(TCG: 8 booting guests on 2 cores also starve the agent's threads) are measured.
Run as root: .venv/bin/python bench/vm_lifecycle.py [--rounds 5] [--counts 1,8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt
import requests

from devcluster import guestimage
from devcluster.benchhost import BenchHost
from devcluster.kvmhost import (
    GUEST_CACHE,
    guest_vm_cmd,
)
from kvmagent.config import KvmAgentConfig
from kvmagent.drivers.domain import domain_xml
from kvmagent.models.vm import StartVmCmd
from kvmagent.vmspec import domain_for


class Bench(BenchHost):
    def __init__(self, root: Path):
        super().__init__(root, "bench")
        self.image = guestimage.build(GUEST_CACHE)
        self.cfg = KvmAgentConfig(domain_type="qemu", data_dir=self.host.dir / "data" / "kvmagent")
        self.macs = iter(range(1, 1 << 16))
        self.boot = True

    def up(self) -> None:
        super().up()
        self.conn = self.libvirtd.open()

    def start_cmd(self) -> dict:
        """The test guest; with ``self.boot`` False, without its kernel: SeaBIOS finds no
        bootable disk and idles, so the guest costs no CPU while the next ones start."""
        mac = next(self.macs)
        cmd = guest_vm_cmd(self.host, self.image, uuid.uuid4().hex,
                           f"52:54:00:20:{mac >> 8:02x}:{mac & 255:02x}")
        if not self.boot:
            for key in ("bootKernel", "bootInitrd", "bootCmdline"):
                del cmd[key]
        return cmd

    # -- through the agent ---------------------------------------------------------
    def agent_calls(self, path: str, bodies: list[dict]) -> float:
        tasks = [uuid.uuid4().hex for _ in bodies]

        def post(i: int) -> None:
            ack = requests.post(self.url + path, json=bodies[i], timeout=30, headers={
                "taskuuid": tasks[i], "callbackurl": self.receiver.url})
            ack.raise_for_status()

        started = time.monotonic()
        with ThreadPoolExecutor(len(bodies)) as pool:
            list(pool.map(post, range(len(bodies))))
        last = 0.0
        for t in tasks:
            [cb] = self.receiver.wait(timeout=120, taskuuid=t)
            if not cb.body["success"]:
                raise RuntimeError(f"{path} failed: {cb.body['error']}")
            last = max(last, cb.at)
        return last - started

    # -- raw libvirt -----------------------------------------------------------------
    def raw(self, fn, items: list) -> float:
        started = time.monotonic()
        with ThreadPoolExecutor(len(items)) as pool:
            list(pool.map(fn, items))
        return time.monotonic() - started

    def xml(self, cmd: dict) -> str:
        return domain_xml(domain_for(StartVmCmd.model_validate(cmd), self.cfg,
                                     self.cfg.data_dir / "consoles"))

    def agent_round(self, n: int) -> dict[str, float]:
        cmds = [self.start_cmd() for _ in range(n)]
        start = self.agent_calls("/vm/start", cmds)
        destroy = self.agent_calls("/vm/destroy", [{"uuid": c["vmInstanceUuid"]} for c in cmds])
        return {"agent_start": start, "agent_destroy": destroy}

    def raw_round(self, n: int) -> dict[str, float]:
        xmls = [self.xml(self.start_cmd()) for _ in range(n)]
        doms: list[libvirt.virDomain] = []
        start = self.raw(lambda x: doms.append(self.conn.createXML(x, 0)), xmls)
        destroy = self.raw(lambda d: d.destroy(), doms)
        xmls = [self.xml(self.start_cmd()) for _ in range(n)]
        defined: list[libvirt.virDomain] = []

        def define_create(x: str) -> None:
            d = self.conn.defineXML(x)
            d.create()
            defined.append(d)

        define_create_time = self.raw(define_create, xmls)
        for d in defined:
            d.destroy()
            d.undefine()
        return {"raw_start": start, "raw_destroy": destroy,
                "raw_define_create": define_create_time}

    def round(self, n: int, agent_first: bool) -> dict[str, float]:
        """One agent and one raw measurement; which goes first alternates between rounds:
        guests booting on TCG take CPU from starts still queued, so order matters."""
        if agent_first:
            return self.agent_round(n) | self.raw_round(n)
        return self.raw_round(n) | self.agent_round(n)


def report(title: str, results: dict[int, list[dict[str, float]]], rounds: int) -> None:
    print(f"\n{title}\n{'guests':>6} {'op':8} {'agent':>9} {'raw':>9} {'ratio':>6} "
          f"{'target':>9}  verdict   (median of {rounds}; raw = createXML of the same XML)")
    for n, per_round in results.items():
        med = {k: statistics.median(r[k] for r in per_round) for k in per_round[0]}
        for op in ("start", "destroy"):
            agent, raw = med[f"agent_{op}"], med[f"raw_{op}"]
            target = 1.10 * raw + 0.050
            print(f"{n:>6} {op:8} {agent * 1000:7.0f}ms {raw * 1000:7.0f}ms {agent / raw:6.2f} "
                  f"{target * 1000:7.0f}ms  {'ok' if agent <= target else 'OVER'}")
        print(f"{n:>6} {'(define+create raw)':28} {med['raw_define_create'] * 1000:.0f}ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds per count (median shown)")
    ap.add_argument("--counts", default="1,8", help="concurrent guests per round")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    results = {}
    with tempfile.TemporaryDirectory(prefix="zb", dir="/tmp") as tmp:
        bench = Bench(Path(tmp))
        try:
            bench.up()
            bench.round(1, True)  # warm-up: caches, first qemu start
            for boot in (False, True):
                bench.boot = boot
                results[boot] = {n: [bench.round(n, i % 2 == 0) for i in range(args.rounds)]
                                 for n in counts}
        finally:
            bench.down()
    report("Idle guests (nothing to boot): the agent's own cost over libvirt",
           results[False], args.rounds)
    report("Booting guests (the test guest on TCG: each booting guest takes a host CPU)",
           results[True], args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
