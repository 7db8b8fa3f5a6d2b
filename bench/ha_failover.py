#!/usr/bin/env python3
"""Time from host loss to the HA VM running on another host (issue #8), next to a plain
StartVmInstance of the same VM on that host, measured in the same run.

The cloud of ``make up`` (devcluster.cluster: coordinator process, Ceph, two simulated
KVM hosts with libvirtd, qemu guests), in its own directory, prefix and subnet. The demo
VM is made NeverStop; then its host's management NIC goes down (it carries the
coordinator and Ceph: the host loses both, as with a pulled cable). The phases are
timed by polling the API every 0.1 s:

- detect: until the host is Disconnected (ping.interval x ping.maxFailure, each missed
  ping waiting its 5 s timeout);
- decide: until the VM's row leaves the host (the peer's scan watches the heartbeat for
  interval x (maxAttempts + 2) + 5 s: the time the self-fencer needs to act, plus margin);
- start: until the VM is Running on the other host.

Baseline: the VM stopped and started again with StartVmInstance on that same host.
Each ``--settings`` round is ``ping.interval,ping.maxFailure,fencer.interval,
fencer.maxAttempts``; the default runs ZStack's defaults-like settings and fast ones.
Run as root: .venv/bin/python bench/ha_failover.py [--settings 10,3,5,6 1,2,0.5,4]
[--logs DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import requests

from devcluster import democloud, hostnet
from devcluster.cluster import DevCluster

CONFIGS = (("host", "ping.interval"), ("host", "ping.maxFailure"),
           ("ha", "host.selfFencer.interval"), ("ha", "host.selfFencer.maxAttempts"))


def poll(what: str, predicate, timeout: float = 600.0) -> float:
    """Seconds on the monotonic clock when ``predicate()`` first held."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return time.monotonic()
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not within {timeout} s")


def failover(cluster: DevCluster, api: democloud.HttpApi, vm_uuid: str,
             settings: list[str]) -> dict:
    previous_ping = float(api.query("QueryGlobalConfig", category="host",
                                    name="ping.interval")[0]["value"])
    for (category, name), value in zip(CONFIGS, settings, strict=True):
        api("UpdateGlobalConfig", category=category, name=name, value=value)
    vm = api.query("QueryVmInstance", uuid=vm_uuid)[0]
    host_ip = api.query("QueryHost", uuid=vm["hostUuid"])[0]["managementIp"]
    lost = next(h for h in cluster.hosts() if h.mgmt_address == host_ip)
    poll("the fencers on the new settings", lambda: all(
        [f["interval"] for f in requests.post(cluster.url("kvmagent", h) +
                                              "/ha/selffencer/status", json={},
                                              timeout=5).json()["fencers"]]
        == [float(settings[2])] for h in cluster.hosts()), 60)
    time.sleep(previous_ping + float(settings[0]))  # the ping loop on the new interval
    cut = time.monotonic()
    lost.run(["ip", "link", "set", lost.nics["mgmt"], "down"])
    try:
        detected = poll("Disconnected", lambda: api.query(
            "QueryHost", uuid=vm["hostUuid"])[0]["status"] == "Disconnected")
        decided = poll("the VM off the lost host", lambda: api.query(
            "QueryVmInstance", uuid=vm_uuid)[0]["hostUuid"] != vm["hostUuid"])
        running = poll("the VM running elsewhere", lambda: (lambda r: r["state"] == "Running"
                       and r["hostUuid"] not in (None, vm["hostUuid"]))(api.query(
                           "QueryVmInstance", uuid=vm_uuid)[0]))
    finally:
        lost.run(["ip", "link", "set", lost.nics["mgmt"], "up"])
    poll("the lost host back", lambda: api.query(
        "QueryHost", uuid=vm["hostUuid"])[0]["status"] == "Connected", 120)
    return {"total": running - cut, "detect": detected - cut, "decide": decided - detected,
            "start": running - decided}


def plain_start(api: democloud.HttpApi, vm_uuid: str) -> float:
    api("StopVmInstance", uuid=vm_uuid, type="cold")
    started = time.monotonic()
    api("StartVmInstance", uuid=vm_uuid)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["10,3,5,6", "1,2,0.5,4"],
                        help="ping.interval,ping.maxFailure,fencer.interval,"
                             "fencer.maxAttempts per round")
    parser.add_argument("--logs", type=Path, help="copy the services' and hosts' logs here "
                        "before the cloud goes down")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zfleet-bench-ha-") as tmp:
        cluster = DevCluster(Path(tmp), prefix=hostnet.free_prefix("zh"),
                             mgmt_subnet=hostnet.free_subnet())
        try:
            cluster.up(progress=lambda m: print(f"  {m}", flush=True))
            api = democloud.HttpApi(cluster.url("coordinator"))
            vm_uuid = cluster.status()["demo_vm"]["uuid"]
            api("SetVmInstanceHaLevel", uuid=vm_uuid, level="NeverStop")
            for settings in args.settings:
                values = settings.split(",")
                t = failover(cluster, api, vm_uuid, values)
                base = plain_start(api, vm_uuid)
                print(f"settings {settings}: host loss -> HA VM running {t['total']:.1f} s "
                      f"(detect {t['detect']:.1f}, decide {t['decide']:.1f}, start "
                      f"{t['start']:.1f}); plain StartVmInstance {base:.1f} s; "
                      "load {:.1f}".format(os.getloadavg()[0]), flush=True)
        finally:
            if args.logs:
                for log_dir in [Path(tmp) / "log", *(h.dir / "log" for h in cluster.hosts())]:
                    if log_dir.is_dir():
                        shutil.copytree(log_dir, args.logs / log_dir.parent.name,
                                        dirs_exist_ok=True)
            cluster.down(progress=lambda _m: None)


if __name__ == "__main__":
    main()
