"""kvmagent's domain model against a real libvirtd: what it defines, libvirt keeps (as the
model reads it back), and the test guest boots from it, sees its disks and NIC, and sees
a disk hot-plugged with :func:`disk_xml`."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import libvirt
import psutil
import pytest

from agentlib.shell import run
from devcluster import procs
from devcluster.guestconsole import parse_console
from devcluster.guestimage import MIN_MEMORY_MIB
from devcluster.kvmhost import add_guest_bridge
from kvmagent.drivers.domain import (
    Disk,
    Domain,
    Graphics,
    Nic,
    disk_xml,
    domain_xml,
    next_disk_target,
    nic_xml,
    parse_domain,
)

pytestmark = pytest.mark.integration

MAC = "52:54:00:5a:10:01"
MAC2 = "52:54:00:5a:10:02"
GUEST_IP = "10.250.0.77"
ASSET_TAG = "zfleet-test.zstack.io"
MIB = 1 << 20


@pytest.fixture
def libvirt_conn(simhost_factory, libvirtd_factory):
    """(host, connection) to a fresh libvirtd; every domain left behind is removed."""
    host = simhost_factory(roles=())
    conn = libvirtd_factory(host).open()
    try:
        yield host, conn
    finally:
        for dom in conn.listAllDomains():
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        conn.close()


def test_libvirt_keeps_every_field_the_model_emits(libvirt_conn):
    """Defining needs no files, images or secrets: libvirt checks those only at start."""
    _, conn = libvirt_conn
    d = Domain(
        uuid=uuid.uuid4().hex,
        name="all-fields <&'\">",
        domain_type="qemu",
        memory_bytes=256 * MIB,
        vcpus=4,
        sockets=2,
        cores=2,
        disks=[
            Disk(target="vda", path="/vols/root.qcow2", boot_order=1, serial="0123abcd"),
            Disk(target="vdb", source_type="network", rbd_name="pool/vol-1", format="raw",
                 rbd_hosts=[("10.0.0.1", 6789), ("10.0.0.2", 3300)],
                 rbd_secret_uuid=uuid.uuid4().hex, rbd_user="zstack", cache="writeback"),
            Disk(target="hdc", device="cdrom", bus="ide", format="raw", boot_order=2),
            Disk(target="sda", bus="scsi", path="/vols/data.raw", format="raw", readonly=True),
            Disk(target="sdb", bus="sata", device="cdrom", path="/isos/a b.iso", format="raw"),
        ],
        nics=[
            Nic(mac="52:54:00:00:00:01", bridge="br_eth0", target_dev="vnic1.0", boot_order=3),
            Nic(mac="52:54:00:00:00:02", bridge="br_eth0_100", model="e1000"),
        ],
        graphics=Graphics(password="s3cr<t"),
        serial_log="/var/log/zfleet/all-fields.log",
        metadata={"vmName": "a <b> & 'c' \"d\"", "empty": ""},
        smbios_asset_tag=ASSET_TAG,
    )
    dom = conn.defineXML(domain_xml(d))
    assert parse_domain(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)) == d
    without_password = Graphics(password=None)
    assert parse_domain(dom.XMLDesc(0)).graphics == without_password


@pytest.mark.parametrize("mode", ["none", "host-model"])
def test_cpu_mode_survives_define_and_start(libvirt_conn, mode):
    """libvirt turns "none" into a default custom model on define and host-model into
    the model it picked at start; parse still gives the mode the VM was defined with."""
    _, conn = libvirt_conn
    d = Domain(uuid=uuid.uuid4().hex, name=f"cpu-{mode}", domain_type="qemu",
               memory_bytes=128 * MIB, vcpus=2, sockets=1, cores=2, cpu_mode=mode)
    dom = conn.defineXML(domain_xml(d))
    assert parse_domain(dom.XMLDesc(0)) == d
    dom.create()  # no bootable device: the firmware just keeps looking, fine for this
    live = dom.XMLDesc(0)
    assert "mode='custom'" in live
    assert parse_domain(live) == d


def test_guest_boots_sees_disk_and_lease_then_hotplug(libvirt_conn, guest_image):
    host, conn = libvirt_conn
    add_guest_bridge(host, static={MAC: GUEST_IP})
    data = host.dir / "data.qcow2"
    run(["qemu-img", "create", "-f", "qcow2", str(data), "64M"])
    console = host.dir / "guest.console"
    d = Domain(
        uuid=uuid.uuid4().hex,
        name="guest1",
        domain_type="qemu",
        memory_bytes=MIN_MEMORY_MIB * MIB,
        vcpus=1,
        disks=[
            Disk(target="vda", path=str(data), serial="vol1"),
            Disk(target="hdc", device="cdrom", bus="ide"),  # empty: libvirt drops its format
        ],
        nics=[Nic(mac=MAC, bridge="br0", target_dev="vnic1.0")],
        graphics=Graphics(listen="127.0.0.1"),
        kernel=str(guest_image.kernel),
        initrd=str(guest_image.initrd),
        cmdline=guest_image.cmdline,
        serial_log=str(console),
        metadata={"vmName": "guest <1>"},
        smbios_asset_tag=ASSET_TAG,
    )
    dom = conn.defineXML(domain_xml(d))
    started = time.monotonic()
    dom.create()
    report = procs.wait_for(lambda: (r := parse_console(console.read_text())).ready and r,
                            60, "guest boot + DHCP lease", interval=0.2)
    boot_seconds = time.monotonic() - started
    assert report.disks == {"vda": 64 * MIB}
    assert report.leases["eth0"]["ip"] == f"{GUEST_IP}/24"
    assert report.leases["eth0"]["mac"] == MAC
    assert "vnic1.0" in host.run(["ip", "-br", "link", "show", "master", "br0"]).stdout
    qemu = [p for p in psutil.Process(host.daemon("libvirtd").pid).children(recursive=True)
            if "qemu-system" in p.name()]
    smbios = qemu[0].cmdline()[qemu[0].cmdline().index("-smbios") + 1]
    assert f"asset={ASSET_TAG}" in smbios.split(",")

    extra = host.dir / "extra.qcow2"
    run(["qemu-img", "create", "-f", "qcow2", str(extra), "32M"])
    used = {disk.target for disk in d.disks}
    hotplug = Disk(target=next_disk_target(used, "virtio"), path=str(extra), serial="vol2")
    assert hotplug.target == "vdb"
    dom.attachDeviceFlags(disk_xml(hotplug), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    report = procs.wait_for(lambda: (r := parse_console(console.read_text()))
                            .disks.get("vdb") and r, 20, "hot-plugged disk in the guest",
                            interval=0.2)
    assert report.disks == {"vda": 64 * MIB, "vdb": 32 * MIB}
    assert ("ZFLEET-HOTPLUG", {"disk": "vdb", "size": str(32 * MIB)}) in report.events

    second_nic = Nic(mac=MAC2, bridge="br0", target_dev="vnic1.1")
    dom.attachDeviceFlags(nic_xml(second_nic), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    report = procs.wait_for(lambda: (r := parse_console(console.read_text()))
                            .nics.get("eth1") and r, 20, "hot-plugged NIC in the guest",
                            interval=0.2)
    assert ("ZFLEET-HOTPLUG", {"nic": "eth1", "mac": MAC2}) in report.events

    live = parse_domain(dom.XMLDesc(0))
    assert (live.uuid, live.name, live.memory_bytes) == (d.uuid, d.name, d.memory_bytes)
    assert live.disks == replace(d, disks=[*d.disks, hotplug]).disks  # (sorted)
    assert live.nics == [*d.nics, second_nic]
    assert live.metadata == d.metadata
    print(f"start -> lease {boot_seconds:.1f}s")
