"""Simulated hosts behave like separate machines on shared L2s, and leave nothing behind."""

from __future__ import annotations

import subprocess
import time

import psutil
import pytest

from agentlib import shell
from devcluster import hostnet, procs
from devcluster.simhost import SimHost

pytestmark = pytest.mark.integration


def ping(address: str, host: SimHost | None = None) -> shell.Result:
    argv = ["busybox", "ping", "-c1", "-W2", address]
    return host.run(argv, check=False) if host else shell.run(argv, check=False)


def netns_names() -> list[str]:
    return shell.run(["ip", "netns", "list"]).stdout.split()


def root_link_names() -> set[str]:
    return {ln["ifname"] for ln in hostnet.links()}


def test_hosts_reach_each_other_and_the_root_namespace(simhost_factory):
    h1, h2 = simhost_factory(), simhost_factory()

    assert ping(h2.mgmt_address, h1).rc == 0
    assert ping(h1.mgmt_address, h2).rc == 0
    assert ping(h1.mgmt_address).rc == 0  # the coordinator's view
    assert h1.run(["hostname"]).stdout.strip() == h1.name
    assert h2.run(["hostname"]).stdout.strip() == h2.name

    # the data NICs share an L2 too: give them addresses and ping across
    data = h1.nics["data"]
    h1.run(["ip", "addr", "add", "172.31.250.1/24", "dev", data])
    h2.run(["ip", "addr", "add", "172.31.250.2/24", "dev", h2.nics["data"]])
    assert ping("172.31.250.2", h1).rc == 0


def test_operators_enter_a_host_by_its_netns_name(simhost_factory):
    host = simhost_factory(roles=())
    assert host.netns in netns_names()
    out = shell.run(["ip", "netns", "exec", host.netns, "ip", "-br", "addr"]).stdout
    assert host.mgmt_address in out


def test_each_host_has_its_own_netns_names_and_run(simhost_factory):
    h1, h2 = simhost_factory(roles=()), simhost_factory(roles=())
    for host in (h1, h2):
        host.run(["ip", "netns", "add", "vr1"])
    h1.run(["ip", "-n", "vr1", "link", "set", "lo", "up"])

    assert h1.run(["ip", "netns", "list"]).stdout.split()[:1] == ["vr1"]
    assert h2.run(["ip", "netns", "list"]).stdout.split()[:1] == ["vr1"]
    assert "vr1" not in netns_names()
    assert "UP" in h1.run(["ip", "-n", "vr1", "-br", "link"]).stdout
    assert "DOWN" in h2.run(["ip", "-n", "vr1", "-br", "link"]).stdout
    # a file under the host's /run is visible from outside under <dir>/run
    h1.run(["touch", "/run/marker"])
    assert (h1.dir / "run" / "marker").exists()
    assert not (h2.dir / "run" / "marker").exists()


def test_stop_powers_the_host_off_and_cleans_the_root_namespace(simhost_factory, host_network):
    own_bridge = f"{host_network.prefix}br-t"  # made on demand, so gone with the last host
    h1 = simhost_factory(roles=("data",))
    h2 = SimHost(
        "stopme",
        h1.dir.parent / "stopme",
        host_network.host_ip(200),
        host_network.mgmt_bridge,
        {"data": own_bridge},
        prefix=host_network.prefix,
    )
    try:
        started = time.monotonic()
        h2.start()
        start_s = time.monotonic() - started
        assert ping(h2.mgmt_address, h1).rc == 0
        anchor = h2.anchor_pid
        daemon = h2.spawn("sleeper", ["sleep", "1000"], h2.dir / "logs" / "sleeper.log")
        # a process nobody registered, inside a netns made inside the host
        h2.run(["ip", "netns", "add", "inner"])
        stray = subprocess.Popen(h2.command(["ip", "netns", "exec", "inner", "sleep", "1000"]))
        procs.wait_for(lambda: psutil.Process(stray.pid).name() == "sleep", 5, "stray sleep")
        links = set(h2.status()["links"].values())
        assert links <= root_link_names() and own_bridge in root_link_names()

        started = time.monotonic()
        SimHost("stopme", h2.dir, prefix=host_network.prefix).stop()  # knows only the name
        stop_s = time.monotonic() - started
        stray.wait(5)
    finally:
        h2.stop()
    print(f"simhost start {start_s:.3f}s stop {stop_s:.3f}s")

    assert procs.is_dead(anchor) and procs.is_dead(daemon.pid)
    assert h2.netns not in netns_names()
    assert not (links | {own_bridge}) & root_link_names()
    assert not h2.running() and h2.status()["links"] == {}
    assert ping(h1.mgmt_address).rc == 0  # the other host and the shared bridge stay
    h2.stop()  # idempotent


def test_link_names_fit_and_are_stable():
    from devcluster.simhost import root_link_name

    short = root_link_name("zf", "h1", 0)
    long = root_link_name("zt9z", "kvm-host-number-1234", 2)
    assert short == "zf-h1-0"
    assert len(long) <= 15 and long == root_link_name("zt9z", "kvm-host-number-1234", 2)
    assert long != root_link_name("zt9z", "kvm-host-number-1235", 2)
