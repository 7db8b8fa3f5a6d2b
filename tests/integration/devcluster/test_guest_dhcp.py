"""The whole stack under the agents: a simulated host's libvirtd boots the test guest on
a bridge in that host, and the guest gets its address from a real dnsmasq there."""

import time

import libvirt
import psutil
import pytest

from devcluster import procs
from devcluster.guestconsole import parse_console
from devcluster.guestimage import MIN_MEMORY_MIB
from devcluster.kvmhost import add_guest_bridge

pytestmark = pytest.mark.integration

MAC = "52:54:00:5a:00:01"
GUEST_IP = "10.250.0.77"


def domain_xml(name, image, console_log):
    return f"""
<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{MIN_MEMORY_MIB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{image.kernel}</kernel>
    <initrd>{image.initrd}</initrd>
    <cmdline>{image.cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <interface type='bridge'>
      <source bridge='br0'/>
      <mac address='{MAC}'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'><source path='{console_log}' append='on'/></serial>
  </devices>
</domain>"""


def test_guest_prints_the_lease_dnsmasq_gave_it(simhost_factory, libvirtd_factory,
                                                guest_image):
    host = simhost_factory(roles=())
    lv = libvirtd_factory(host)
    add_guest_bridge(host, static={MAC: GUEST_IP})

    console = host.dir / "guest1.console"
    conn = lv.open()
    try:
        dom = conn.defineXML(domain_xml("guest1", guest_image, console))
        started = time.monotonic()
        dom.create()
        report = procs.wait_for(lambda: (r := parse_console(console.read_text()))
                                .ready and r, 60, "guest boot + DHCP lease",
                                interval=0.2)
        lease_seconds = time.monotonic() - started
        assert report.leases["eth0"]["ip"] == f"{GUEST_IP}/24"
        assert report.leases["eth0"]["router"] == "10.250.0.1"
        assert report.leases["eth0"]["mac"] == MAC
        # dnsmasq agrees it handed out that address to that MAC
        dnsmasq_log = host.daemon("dnsmasq-br0").log
        assert f"DHCPACK(br0) {GUEST_IP} {MAC}" in open(dnsmasq_log).read()
        print(f"start -> lease {lease_seconds:.1f}s")

        qemu = [p for p in psutil.Process(host.daemon("libvirtd").pid)
                .children(recursive=True) if "qemu-system" in p.name()]
        assert len(qemu) == 1
        dom.destroy()
        assert procs.wait_dead(qemu[0].pid, 5)
        assert dom.info()[0] == libvirt.VIR_DOMAIN_SHUTOFF
        dom.undefine()
    finally:
        conn.close()
