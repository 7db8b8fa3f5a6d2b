#!/usr/bin/env python3
"""Benchmark cephagent against bare librbd and the rbd CLI on one throwaway cluster.

1. ``/ceph/primarystorage/volume/clone`` through the agent (HTTP, validation, lock, clone,
   fsid + capacity in the reply) vs a raw ``rbd.RBD().clone`` from this process, of the
   same protected snapshot, interleaved, p50/p99 over N each.
2. ``/ceph/backupstorage/image/download`` of a 256 MiB raw image of random data (from an
   HTTP server on loopback, and from a file:// URL) vs ``rbd import`` of the same file,
   alternated over rounds; throughput of the best round of each. Also md5 of the file
   alone: the reply's md5Sum costs that much CPU, which rbd import does not spend.

Targets (issue #5): clone p50 <= 1.5 x raw + 5 ms; download >= 80% of rbd import.
Run: .venv/bin/python bench/ceph_clone.py [--clones 50] [--size-mib 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import rbd
import requests

from agentlib import shell
from agentlib.receiver import CallbackReceiver
from devcluster import agents, procs
from devcluster.ceph import CephCluster

PS, BS = "/ceph/primarystorage", "/ceph/backupstorage"
MiB = 1 << 20


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


class Bench:
    def __init__(self, root: Path, size_mib: int):
        self.root = root
        self.size_mib = size_mib
        self.cluster = CephCluster(root / "ceph")
        self.receiver = CallbackReceiver()
        self.http = requests.Session()
        self.files = root / "files"
        self.image = self.files / "image.raw"
        self.proc: procs.Proc | None = None
        self.server: http.server.ThreadingHTTPServer | None = None

    def up(self) -> None:
        self.files.mkdir(parents=True)
        with open(self.image, "wb") as f:
            for _ in range(self.size_mib):
                f.write(os.urandom(MiB))
        # memstore keeps data in RAM: room for two copies of the image plus the clones
        self.cluster.start(osd_bytes=(3 * self.size_mib + 512) * MiB)
        self.receiver.start()
        port = procs.free_port()
        argv = agents.argv("cephagent", "127.0.0.1", port, self.root / "agent", "--ceph-conf",
                           str(self.cluster.conf_path), "--file-url-roots", str(self.files),
                           "--log-level", "WARNING")
        self.proc = procs.spawn("cephagent", argv, self.root / "agent" / "log" / "cephagent.out")
        self.url = f"http://127.0.0.1:{port}"
        agents.wait_ready("cephagent", self.url, self.proc)
        handler = functools.partial(_QuietHandler, directory=str(self.files))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.image_url = f"http://127.0.0.1:{self.server.server_address[1]}/image.raw"
        self.rados = self.cluster.rados()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.proc is not None:
            procs.stop(self.proc)
        self.receiver.stop()
        if hasattr(self, "rados"):
            self.rados.shutdown()
        self.cluster.stop()

    def call(self, path: str, body: dict) -> dict:
        reply = self.http.post(self.url + path, json=body, timeout=60).json()
        if not reply["success"]:
            raise RuntimeError(f"{path}: {reply['error']}")
        return reply

    def call_async(self, path: str, body: dict) -> tuple[float, dict]:
        task = uuid.uuid4().hex
        started = time.monotonic()
        self.http.post(self.url + path, json=body, timeout=30, headers={
            "taskuuid": task, "callbackurl": self.receiver.url}).raise_for_status()
        [cb] = self.receiver.wait(timeout=600, taskuuid=task)
        if not cb.body["success"]:
            raise RuntimeError(f"{path}: {cb.body['error']}")
        return cb.at - started, cb.body

    # -- clones --------------------------------------------------------------------

    def clones(self, n: int) -> tuple[list[float], list[float]]:
        pool = "bench-clone"
        self.call(f"{PS}/addpool", {"poolName": pool, "isCreate": True})
        self.call(f"{PS}/volume/createempty", {"installPath": f"ceph://{pool}/base",
                                               "size": 64 * MiB})
        self.call(f"{PS}/snapshot/commit", {"snapshotPath": f"ceph://{pool}/base@s"})
        agent, raw = [], []
        with self.rados.open_ioctx(pool) as ioctx:
            for i in range(n + 3):  # the first 3 of each warm up (connections, caches)
                for kind in (("agent", "raw") if i % 2 else ("raw", "agent")):
                    name = f"{kind}-{i}"
                    started = time.perf_counter()
                    if kind == "agent":
                        self.call(f"{PS}/volume/clone", {"srcPath": f"ceph://{pool}/base@s",
                                                         "dstPath": f"ceph://{pool}/{name}"})
                    else:
                        rbd.RBD().clone(ioctx, "base", "s", ioctx, name)
                    took = time.perf_counter() - started
                    if i >= 3:
                        (agent if kind == "agent" else raw).append(took)
                    rbd.RBD().remove(ioctx, name)
        return agent, raw

    # -- downloads -----------------------------------------------------------------

    def rbd_import(self, pool: str) -> float:
        started = time.monotonic()
        shell.run(["rbd", "-c", self.cluster.conf_path, "import", "--no-progress", self.image,
                   f"{pool}/imported"], timeout=600)
        took = time.monotonic() - started
        with self.rados.open_ioctx(pool) as ioctx:
            rbd.RBD().remove(ioctx, "imported")
        return took

    def download(self, pool: str, url: str) -> float:
        path = f"ceph://{pool}/downloaded"
        took, reply = self.call_async(f"{BS}/image/download", {
            "url": url, "installPath": path, "imageUuid": uuid.uuid4().hex})
        if reply["size"] != self.size_mib * MiB:
            raise RuntimeError(f"downloaded {reply['size']} bytes, expected "
                               f"{self.size_mib * MiB}")
        self.call(f"{BS}/image/delete", {"installPath": path})
        return took

    def md5_alone(self) -> float:
        """What hashing the image costs by itself: rbd import computes no md5, the
        download must (its reply carries md5Sum), so this bounds its throughput."""
        started = time.monotonic()
        digest = hashlib.md5(usedforsecurity=False)
        with open(self.image, "rb") as f:
            while chunk := f.read(4 * MiB):
                digest.update(chunk)
        return time.monotonic() - started

    def downloads(self, rounds: int) -> dict[str, list[float]]:
        pool = self.call(f"{BS}/init", {"uuid": uuid.uuid4().hex})["poolName"]
        times: dict[str, list[float]] = {"rbd import": [], "download http": [],
                                         "download file": [], "md5 alone": []}
        for r in range(rounds):
            order = list(times) if r % 2 == 0 else list(reversed(times))
            for kind in order:
                if kind == "rbd import":
                    times[kind].append(self.rbd_import(pool))
                elif kind == "md5 alone":
                    times[kind].append(self.md5_alone())
                elif kind == "download http":
                    times[kind].append(self.download(pool, self.image_url))
                else:
                    times[kind].append(self.download(pool, f"file://{self.image}"))
        return times


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clones", type=int, default=50)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ceph-") as tmp:
        bench = Bench(Path(tmp), args.size_mib)
        try:
            bench.up()
            agent, raw = bench.clones(args.clones)
            times = bench.downloads(args.rounds)
        finally:
            bench.down()
    ok = True
    a50, a99, r50, r99 = (pct(agent, .5), pct(agent, .99), pct(raw, .5), pct(raw, .99))
    limit = 1.5 * r50 + 0.005
    print(f"volume/clone over {len(agent)} (memstore, 1 OSD):")
    print(f"  raw librbd clone   p50 {r50 * 1e3:7.2f} ms  p99 {r99 * 1e3:7.2f} ms  "
          f"mean {statistics.mean(raw) * 1e3:.2f} ms")
    print(f"  through cephagent  p50 {a50 * 1e3:7.2f} ms  p99 {a99 * 1e3:7.2f} ms  "
          f"mean {statistics.mean(agent) * 1e3:.2f} ms")
    verdict = "OK" if a50 <= limit else "MISSED"
    ok &= a50 <= limit
    print(f"  target p50 <= 1.5 x raw + 5 ms = {limit * 1e3:.2f} ms: {verdict}")
    print(f"{args.size_mib} MiB raw image of random data, best of {args.rounds} rounds:")
    rate = {k: args.size_mib / min(v) for k, v in times.items()}
    for kind, mibs in rate.items():
        print(f"  {kind:14s} {min(times[kind]):6.2f} s  {mibs:7.1f} MiB/s  "
              f"(rounds: {', '.join(f'{t:.2f}' for t in times[kind])} s)")
    share = rate["download http"] / rate["rbd import"]
    ok &= share >= 0.8
    print(f"  target download >= 80% of rbd import: {share:.0%} "
          f"{'OK' if share >= 0.8 else 'MISSED'} (file:// URL: "
          f"{rate['download file'] / rate['rbd import']:.0%})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
