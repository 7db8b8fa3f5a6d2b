#!/usr/bin/env python3
"""Garbage collection and expunge figures (issue #8), each next to a baseline measured
in the same run.

1. GC backlog: N jobs (DHCP releases of VMs deleted while their host was unreachable,
   as the coordinator keeps them) drained when the host reconnects, through a real
   kvmagent in a simulated host; baseline: the same N commands posted to the same agent
   in a plain loop (what the drain costs beyond the agent's own work).
2. Expunge scan: the expunger's look for due VMs among M Destroyed ones none of which is
   due yet; baseline: a plain ``SELECT COUNT(*)`` over the vm table.

Run as root: .venv/bin/python bench/gc_backlog.py [--jobs 10000] [--destroyed 100000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import requests

from coordinator.app import build
from coordinator.config import CoordinatorConfig
from coordinator.db import new_uuid, now
from coordinator.services import hosts, vmdeletion
from devcluster.benchhost import BenchHost

DHCP_RELEASE = "/flatnetworkprovider/dhcp/release"


def release_body(i: int) -> dict:
    return {"dhcp": [{"namespaceName": "br_eth1_gone",
                      "mac": f"fa:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"}]}


def gc_drain(root: Path, n: int) -> tuple[float, float]:
    """(drain on reconnect, raw loop) seconds for ``n`` jobs."""
    bench = BenchHost(root, "gc")
    host = bench.host
    c = build(CoordinatorConfig(data_dir=root / "coordinator", background=False))
    try:
        bench.up()
        c.set_base_url(f"http://{bench.net.root_ip.split('/')[0]}:1")  # no callbacks needed
        ctx = c.ctx
        client = c.app.test_client()
        zone = client.post("/api/CreateZone", json={"name": "z"}).json["inventory"]["uuid"]
        cluster = client.post("/api/CreateCluster", json={"name": "c", "zoneUuid": zone}
                              ).json["inventory"]["uuid"]
        reply = client.post("/api/AddKVMHost", json={
            "name": "gc", "managementIp": host.mgmt_address, "clusterUuid": cluster}).json
        assert reply["success"], reply
        host_uuid = reply["inventory"]["uuid"]
        with ctx.db.tx() as db:
            db["gc_job"].insert_all({"uuid": new_uuid(), "name": f"release {i}",
                                     "host_uuid": host_uuid, "path": DHCP_RELEASE,
                                     "body_json": json.dumps(release_body(i)),
                                     "is_async": 0, "created": now(), "updated": now()}
                                    for i in range(n))
        ctx.db.update("host", host_uuid, status="Disconnected")
        started = time.monotonic()
        hosts.ping_all(ctx)  # answers -> reconnect -> the host's jobs run
        drained = time.monotonic() - started
        left = ctx.db.find("gc_job", "status != 'Done'")
        assert not left, f"{len(left)} jobs not done"
        session = requests.Session()
        url = bench.url + DHCP_RELEASE
        started = time.monotonic()
        for i in range(n):
            session.post(url, json=release_body(i), timeout=30).raise_for_status()
        raw = time.monotonic() - started
        return drained, raw
    finally:
        c.close()
        bench.down()


def expunge_scan(root: Path, m: int) -> tuple[float, float]:
    """(expunger's scan, plain full count) seconds with ``m`` Destroyed VMs."""
    c = build(CoordinatorConfig(data_dir=root / "scan", background=False))
    try:
        ctx = c.ctx
        with ctx.db.tx() as db:
            db["vm"].insert_all({"uuid": new_uuid(), "name": f"vm{i}", "state": "Destroyed",
                                 "created": now(), "updated": now()} for i in range(m))
        started = time.monotonic()
        assert vmdeletion.expunge_due(ctx) == 0  # none due: the period is a day
        scan = time.monotonic() - started
        started = time.monotonic()
        ctx.db.conn().execute("SELECT COUNT(*) FROM vm").fetchone()
        count = time.monotonic() - started
        return scan, count
    finally:
        c.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10_000, help="GC jobs in the backlog")
    ap.add_argument("--destroyed", type=int, default=100_000, help="Destroyed VMs in the db")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="zb", dir="/tmp") as tmp:
        drained, raw = gc_drain(Path(tmp), args.jobs)
        scan, count = expunge_scan(Path(tmp), args.destroyed)
    print(f"GC backlog of {args.jobs} jobs drained on reconnect: {drained:.2f} s "
          f"({drained / args.jobs * 1000:.2f} ms/job); the same commands in a plain loop: "
          f"{raw:.2f} s ({drained / raw:.2f} x)")
    print(f"expunge scan over {args.destroyed} Destroyed VMs: {scan * 1000:.1f} ms; "
          f"plain COUNT(*) of the table: {count * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
