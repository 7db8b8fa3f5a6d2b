#!/usr/bin/env python3
"""How long cephagent takes to fail commands while its Ceph cluster does not answer.

On a throwaway cluster whose daemons are all SIGSTOPped (connections open, nothing
answers): the time to fail one ``volume/clone``, then (cluster thawed, answering again,
then frozen again) the times of N clones of one image sent at once, which queue on the
image's lock; next to the configured ``--ceph-timeout``. Before issue 14 the k-th queued
clone failed after k timeouts; now the first waits one timeout and the rest fail at once.
Also: how soon after the thaw a clone succeeds again (same agent process).

Run: .venv/bin/python bench/ceph_down.py [--timeout 3] [--queued 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from devcluster import democloud, procs
from devcluster.ceph import CephCluster

PS = "/ceph/primarystorage"


def signal_daemons(cluster: CephCluster, sig: signal.Signals) -> None:
    for daemon in cluster.registry.load():
        if daemon.alive():
            os.kill(daemon.pid, sig)


def post(url: str, path: str, body: dict) -> tuple[float, dict]:
    started = time.monotonic()
    reply = requests.post(url + path, json=body, timeout=600).json()
    return time.monotonic() - started, reply


def clone(url: str, dst: str) -> tuple[float, dict]:
    return post(url, f"{PS}/volume/clone", {"srcPath": "ceph://p/base@s",
                                            "dstPath": f"ceph://p/{dst}"})


def until_answering(url: str, dst: str) -> float:
    """Seconds until a clone succeeds again (polled every 0.1 s, 60 s at most)."""
    started = time.monotonic()
    while not clone(url, dst)[1]["success"]:
        if time.monotonic() - started > 60:
            raise RuntimeError("the agent did not use the cluster again within 60 s")
        time.sleep(0.1)
    return time.monotonic() - started


def run(root: Path, timeout: int, queued: int) -> None:
    cluster = CephCluster(root / "ceph")
    proc = None
    try:
        cluster.start()
        url, proc = democloud.start_cephagent(cluster, root / "agent", timeout)
        for path, body in [("addpool", {"poolName": "p", "isCreate": True}),
                           ("volume/createempty", {"installPath": "ceph://p/base",
                                                   "size": 1 << 20}),
                           ("snapshot/commit", {"snapshotPath": "ceph://p/base@s"})]:
            assert post(url, f"{PS}/{path}", body)[1]["success"], path
        print(f"--ceph-timeout {timeout}s; cluster frozen (SIGSTOP)")

        signal_daemons(cluster, signal.SIGSTOP)
        took, reply = clone(url, "alone")
        assert not reply["success"], reply
        print(f"  one clone failed after        {took:6.2f}s  ({took / timeout:.2f} x timeout)")
        signal_daemons(cluster, signal.SIGCONT)
        print(f"  thawed: a clone works again after {until_answering(url, 'alone'):.2f}s")

        signal_daemons(cluster, signal.SIGSTOP)
        with ThreadPoolExecutor(queued) as pool:
            results = list(pool.map(lambda _: clone(url, "queued"), range(queued)))
        assert not any(r["success"] for _, r in results), results
        times = sorted(t for t, _ in results)
        print(f"  {queued} clones of one image:  " + "  ".join(f"{t:.2f}s" for t in times)
              + f"  (last {times[-1] / timeout:.2f} x timeout; before the fix ~{queued} x)")
        signal_daemons(cluster, signal.SIGCONT)
        print(f"  thawed: a clone works again after {until_answering(url, 'queued'):.2f}s")
    finally:
        if proc is not None:
            procs.stop(proc)
        signal_daemons(cluster, signal.SIGCONT)
        cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=int, default=3, help="--ceph-timeout of the agent")
    ap.add_argument("--queued", type=int, default=3, help="clones of one image sent at once")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ceph-down-") as tmp:
        run(Path(tmp), args.timeout, args.queued)


if __name__ == "__main__":
    main()
