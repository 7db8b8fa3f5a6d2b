"""VM HA with real hosts, agents, Ceph and qemu: a NeverStop VM whose host is cut off
from the coordinator only stays where it runs; cut off from its storage too, the host
fences itself and the coordinator starts the VM on the other host, never on both; a
host powered off has its VM started elsewhere too."""

import os
import threading
import time
import uuid as uuidlib

import psutil
import pytest
import requests

from coordinator.services.failover import scan_window
from devcluster import procs

pytestmark = pytest.mark.integration

FAST = [("host", "ping.interval", "0.5"), ("host", "ping.maxFailure", "2"),
        ("ha", "host.selfFencer.interval", "0.5"), ("ha", "host.selfFencer.maxAttempts", "4")]


class QemuWatch:
    """When a VM's qemu process was seen alive, per network namespace (= simulated host),
    sampled from /proc every 50 ms: what an operator's ``ps`` on each host would show."""

    def __init__(self, vm_uuid: str):
        self.needle = str(uuidlib.UUID(vm_uuid))
        self.seen: dict[str, list[float]] = {}  # netns -> [first, last]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            now = time.monotonic()
            for p in psutil.process_iter(["pid", "cmdline"]):
                if self.needle in (p.info["cmdline"] or ()):
                    try:
                        ns = os.readlink(f"/proc/{p.info['pid']}/ns/net")
                    except OSError:
                        continue
                    span = self.seen.setdefault(ns, [now, now])
                    span[1] = now


def netns_of(host) -> str:
    return os.readlink(f"/proc/{host.anchor_pid}/ns/net")


def fencers(host) -> list[dict]:
    reply = requests.post(f"http://{host.mgmt_address}:7070/ha/selffencer/status", json={},
                          timeout=5).json()
    assert reply["success"], reply
    return reply["fencers"]


def fencer(host) -> dict:
    [f] = fencers(host)
    return f


def test_a_neverstop_vm_moves_only_once_its_host_is_surely_gone(cloud):
    api = cloud.api
    for category, name, value in FAST:
        api("UpdateGlobalConfig", category=category, name=name, value=value)
    api.coordinator.scheduler.start()  # pings, fencer set-up, failover
    vm = cloud.create_vm("ha-vm", systemTags=["ha::NeverStop"])
    assert api("GetVmInstanceHaLevel", uuid=vm["uuid"])["level"] == "NeverStop"
    cloud.wait_console(vm["uuid"], lambda r: r.ip(), "a DHCP lease on the first host")
    lost = cloud.host_of(vm["uuid"])
    [other] = [h for h in cloud.hosts if h is not lost]
    procs.wait_for(lambda: fencer(lost)["interval"] == 0.5 and fencer(lost)["counter"] > 2,
                   10, "the lost host's fencer heartbeating with the fast settings")

    def db_host() -> dict:
        return api.query("QueryHost", uuid=vm["hostUuid"])[0]

    # 1. Cut off from the coordinator (and the peers) only: its heartbeat goes on, so the
    #    coordinator is not sure, and the VM stays where it runs.
    drop = ["INPUT", "-p", "tcp", "--dport", "7070", "-j", "DROP"]
    lost.run(["iptables", "-I", *drop])
    try:
        procs.wait_for(lambda: db_host()["status"] == "Disconnected", 30, "Disconnected")
        ps = api.ctx.db.get("primary_storage", cloud.primary_storage)
        row = api.ctx.db.get("host", vm["hostUuid"])
        assert not api.coordinator.scheduler.failover.host_is_down(row, ps)
    finally:
        lost.run(["iptables", "-D", *drop])
    procs.wait_for(lambda: db_host()["status"] == "Connected", 10, "reconnected")
    [row] = api.query("QueryVmInstance", uuid=vm["uuid"])
    assert (row["state"], row["hostUuid"]) == ("Running", vm["hostUuid"])
    assert fencer(lost)["fencedVms"] == []

    # 2. Cut off from everything (the mgmt NIC carries the coordinator and Ceph): the host
    #    fences itself, the scan sees its heartbeat stand still, the VM starts elsewhere.
    with QemuWatch(vm["uuid"]) as watch:
        procs.wait_for(lambda: netns_of(lost) in watch.seen, 5, "qemu seen on the host")
        cut = time.monotonic()
        lost.run(["ip", "link", "set", lost.nics["mgmt"], "down"])
        try:
            limit = 2 * 0.5 * 2 + scan_window(api.ctx) + 60
            procs.wait_for(lambda: api.query("QueryVmInstance", uuid=vm["uuid"])[0][
                "hostUuid"] not in (None, vm["hostUuid"]), limit, "the VM on the other host",
                interval=0.2)
            moved = time.monotonic() - cut
            procs.wait_for(lambda: netns_of(other) in watch.seen, 10, "qemu on the other")
        finally:
            lost.run(["ip", "link", "set", lost.nics["mgmt"], "up"])
    before, after = watch.seen[netns_of(lost)], watch.seen[netns_of(other)]
    assert before[1] < after[0], f"ran on both hosts: {watch.seen}"
    print(f"host loss -> HA VM running elsewhere: {moved:.1f} s (qemu gone on the lost host "
          f"{before[1] - cut:.1f} s after the cut, started on the other "
          f"{after[0] - cut:.1f} s after)")
    [row] = api.query("QueryVmInstance", uuid=vm["uuid"])
    assert row["state"] == "Running"
    cloud.wait_console(vm["uuid"], lambda r: r.ip() == vm["vmNics"][0]["ip"],
                       "the same address leased on the other host")

    # The lost host comes back: it had fenced the VM; its GC jobs clean up after it.
    procs.wait_for(lambda: db_host()["status"] == "Connected", 20, "the lost host back")
    assert vm["uuid"] in fencer(lost)["fencedVms"]
    procs.wait_for(lambda: {j["status"] for j in api.query(
        "QueryGCJob", hostUuid=vm["hostUuid"])} == {"Done"}, 20, "its GC jobs done")
    assert vm["uuid"] not in lost.run(["virsh", "-c", "qemu:///system", "list", "--all",
                                       "--name"]).stdout

    # 3. The host it runs on now is powered off (every process in it, its namespaces):
    #    no agent, no heartbeat -> the VM runs on the first host again.
    other.stop()
    procs.wait_for(lambda: (lambda r: r["state"] == "Running" and r["hostUuid"] ==
                            vm["hostUuid"])(api.query("QueryVmInstance", uuid=vm["uuid"])[0]),
                   2 * 0.5 * 2 + scan_window(api.ctx) + 60, "the VM back on the first host",
                   interval=0.2)
    cloud.wait_console(vm["uuid"], lambda r: r.ip() == vm["vmNics"][0]["ip"],
                       "its address leased on the first host again")

    # HA switched off (planned whole-cluster work): no host fences itself any more
    api("UpdateGlobalConfig", category="ha", name="enable", value="false")
    procs.wait_for(lambda: fencers(lost) == [], 10, "the self-fencer cancelled")
