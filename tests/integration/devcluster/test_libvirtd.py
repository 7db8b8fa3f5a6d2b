"""A libvirtd per simulated host: private state, answers from the root namespace, runs qemu."""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from agentlib import shell
from devcluster import hostnet, procs
from devcluster.libvirtd import Libvirtd
from devcluster.simhost import SimHost

pytestmark = pytest.mark.integration

# no disk: SeaBIOS finds nothing to boot and qemu just keeps running, which is enough here
DOMAIN = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices><graphics type='vnc' autoport='yes'/></devices>
</domain>"""


def qemu_pid(host: SimHost, domain: str) -> int:
    return int((host.dir / "run" / "libvirt" / "qemu" / f"{domain}.pid").read_text())


def vnc_port(dom: libvirt.virDomain) -> int:
    return int(ET.fromstring(dom.XMLDesc()).find("devices/graphics").get("port"))


def test_libvirtd_runs_and_destroys_a_domain(simhost_factory, libvirtd_factory):
    host = simhost_factory(roles=())
    started = time.monotonic()
    lv = libvirtd_factory(host)
    start_s = time.monotonic() - started
    conn = libvirt.open(lv.uri)
    try:
        assert conn.getHostname() == host.name
        dom = conn.defineXML(DOMAIN.format(name="probe"))
        dom.create()
        assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        pid = qemu_pid(host, "probe")
        assert not procs.is_dead(pid)

        # VNC listens in the host's own port range, reachable from the root namespace
        port = vnc_port(dom)
        low, high = lv.ports()["remote_display"]
        assert low <= port <= high
        with socket.create_connection((host.mgmt_address, port), timeout=5) as s:
            assert s.recv(12).startswith(b"RFB")

        started = time.monotonic()
        dom.destroy()
        assert procs.wait_dead(pid, 5)
        destroy_s = time.monotonic() - started
        assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
        dom.undefine()
    finally:
        conn.close()
    print(f"libvirtd start {start_s:.3f}s, destroy (qemu gone) {destroy_s:.3f}s")
    assert destroy_s < 1.0  # ~1.6 s when PID 1 has to reap qemu


def test_two_libvirtds_are_separate_hypervisors(simhost_factory, libvirtd_factory):
    h1, h2 = simhost_factory(roles=()), simhost_factory(roles=())
    lv1, lv2 = libvirtd_factory(h1), libvirtd_factory(h2)
    c1, c2 = libvirt.open(lv1.uri), libvirt.open(lv2.uri)
    # over the mgmt network too, as a migration source would reach its peer
    c2tcp = libvirt.open(lv2.tcp_uri)
    try:
        uuids = {ET.fromstring(c.getCapabilities()).findtext("host/uuid") for c in (c1, c2)}
        assert uuids == {lv1.host_uuid, lv2.host_uuid} and len(uuids) == 2
        assert c2tcp.getHostname() == h2.name
        c1.defineXML(DOMAIN.format(name="same-name"))
        c2.defineXML(DOMAIN.format(name="same-name"))
        c1.lookupByName("same-name").undefine()
        assert c1.listDefinedDomains() == [] and c2.listDefinedDomains() == ["same-name"]
        assert c2tcp.listDefinedDomains() == ["same-name"]
    finally:
        for c in (c1, c2, c2tcp):
            c.close()


def test_stop_takes_qemu_down_and_restart_keeps_definitions(simhost_factory, libvirtd_factory):
    host = simhost_factory(roles=())
    lv = libvirtd_factory(host)
    conn = libvirt.open(lv.uri)
    conn.defineXML(DOMAIN.format(name="survivor")).create()
    conn.close()
    qemu = qemu_pid(host, "survivor")
    daemon = host.daemon("libvirtd")

    Libvirtd(SimHost(host.name, host.dir, prefix=host.prefix)).stop()  # a fresh object
    assert procs.is_dead(qemu) and procs.is_dead(daemon.pid, daemon.create_time)

    lv.start()
    conn = libvirt.open(lv.uri)
    try:
        dom = conn.lookupByName("survivor")
        assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF
        dom.create()
        qemu = qemu_pid(host, "survivor")
    finally:
        conn.close()
    anchor = host.anchor_pid
    daemons = [host.daemon(name) for name in ("libvirtd", "virtlogd")]
    links = set(host.status()["links"].values())
    host.stop()  # stops libvirtd first, whose subreaper kills the running qemu
    assert procs.is_dead(qemu) and procs.is_dead(anchor)
    assert all(procs.is_dead(d.pid, d.create_time) for d in daemons)
    assert host.netns not in shell.run(["ip", "netns", "list"]).stdout.split()
    assert not links & {ln["ifname"] for ln in hostnet.links()}


def test_socket_path_too_long_is_refused(tmp_path: Path):
    host = SimHost("h1", tmp_path / ("x" * 100), prefix="zt")
    with pytest.raises(ValueError, match="unix sockets allow 107"):
        Libvirtd(host)
