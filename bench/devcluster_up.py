#!/usr/bin/env python3
"""`make up` on the second day vs the first `make up`, in the same run.

Each round builds a new two-host cloud in a temporary directory (the baseline: what the
first `make up` costs once Debian's packages and the guest image are there), then
`down` + `up` (second day: Ceph resumes from its bluestore file, the coordinator from its
database, the demo VM boots again and gets its lease), then a power cut (every process
SIGKILLed, the namespaces and bridges gone) + `up` (a reboot), then `reset`. The Ceph
part of each `up` is timed from its progress lines. Uses its own link prefix and
subnet, so a `make up` cloud on this machine is left alone. Run as root:
.venv/bin/python bench/devcluster_up.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from devcluster import hostnet
from devcluster.cluster import DevCluster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.fixtures.powercut import power_cut  # the test suite's reboot


def timed_up(cluster: DevCluster) -> tuple[float, float]:
    """Seconds of the whole ``up`` and of its Ceph step (to the next progress line)."""
    marks: list[tuple[float, str]] = []
    start = time.monotonic()
    cluster.up(progress=lambda msg: marks.append((time.monotonic() - start, msg)))
    total = time.monotonic() - start
    i = next(n for n, (_, msg) in enumerate(marks) if msg.startswith("ceph:"))
    return total, marks[i + 1][0] - marks[i][0]


def one_round() -> dict[str, tuple[float, float]]:
    root = Path(tempfile.mkdtemp(prefix="zbench-up-", dir="/tmp"))
    cluster = DevCluster(root, hosts=2, prefix=hostnet.free_prefix("zb"),
                         mgmt_subnet=hostnet.free_subnet())
    try:
        times = {"first up (new cloud)": timed_up(cluster)}
        start = time.monotonic()
        cluster.down(progress=lambda _m: None)
        times["down"] = (time.monotonic() - start, 0.0)
        times["second-day up (after down)"] = timed_up(cluster)
        power_cut(cluster)
        times["up after a power cut"] = timed_up(cluster)
        return times
    finally:
        cluster.reset(progress=lambda _m: None)
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rounds = [one_round() for _ in range(args.rounds)]
    print(f"devcluster up, 2 hosts, {args.rounds} round(s), median (min-max) seconds:")
    print(f"  {'':30} {'whole':>22} {'of which Ceph':>16}")
    for name in rounds[0]:
        whole = [r[name][0] for r in rounds]
        ceph = [r[name][1] for r in rounds]
        ceph_txt = f"{statistics.median(ceph):6.1f}" if any(ceph) else ""
        print(f"  {name:30} {statistics.median(whole):6.1f} ({min(whole):5.1f}-{max(whole):5.1f})"
              f" {ceph_txt:>16}")
    base = statistics.median(r["first up (new cloud)"][0] for r in rounds)
    again = statistics.median(r["second-day up (after down)"][0] for r in rounds)
    print(f"second-day up / first up: {again / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
