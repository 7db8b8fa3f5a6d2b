"""The libvirt domain model: XML that libvirt's own schema accepts, read back into the
same objects, hostile strings escaped by the XML library, and validation errors that
name the field. No libvirt connection: tests/integration/kvmagent/test_domain_boot.py
does that part."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from agentlib.shell import run
from kvmagent.drivers.domain import (
    ZFLEET_NS,
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

UUID = "0123456789abcdef0123456789abcdef"
LIBVIRT_UUID = "01234567-89ab-cdef-0123-456789abcdef"
SECRET = "fedcba98-7654-3210-fedc-ba9876543210"
MIB = 1 << 20
HOSTILE = "a<b>&c'd\"e"


def _domain(**kw) -> Domain:
    return Domain(**{"uuid": UUID, "name": "vm-1", "memory_bytes": 512 * MIB, "vcpus": 2, **kw})


def _files_cdrom_nics_vnc() -> Domain:
    return _domain(
        disks=[
            Disk(target="vda", path="/vols/root.qcow2", boot_order=1, serial="vol-root"),
            Disk(target="vdb", path="/vols/data.raw", format="raw", cache="writeback"),
            Disk(target="hdc", device="cdrom", bus="ide", path="/isos/debian.iso", format="raw",
                 boot_order=2),
        ],
        nics=[
            Nic(mac="52:54:00:12:34:56", bridge="br_eth0", target_dev="vnic1.0", boot_order=3),
            Nic(mac="52:54:00:12:34:57", bridge="br_eth0_100", model="e1000"),
        ],
        graphics=Graphics(password="pw"),
    )


def _rbd() -> Domain:
    return _domain(
        domain_type="qemu",
        disks=[Disk(target="vda", source_type="network", rbd_name="pool-1/vol-1", format="raw",
                    rbd_hosts=[("10.0.0.1", 6789), ("mon2.example", 3300)],
                    rbd_secret_uuid=SECRET, rbd_user="zstack", boot_order=1),
               Disk(target="hda", device="cdrom", bus="ide", source_type="network",
                    rbd_name="isos/img-1", format="raw")],  # fmt: skip
    )


def _spice() -> Domain:
    return _domain(graphics=Graphics(kind="spice", listen="10.0.0.5", port=5930,
                                     password="a long spice password"))  # fmt: skip


def _kernel_boot() -> Domain:
    return _domain(
        domain_type="qemu",
        kernel="/images/vmlinux",
        initrd="/images/initrd.cpio.gz",
        cmdline="console=ttyS0 no_timer_check quiet",
        serial_log="/var/log/zfleet/vm-1.console",
        smbios_asset_tag="vm-1.zstack.io",
        disks=[Disk(target="vda", path="/vols/data.qcow2")],
    )


def _hostile_strings() -> Domain:
    return _domain(
        name=f"vm {HOSTILE}",
        kernel=f"/images/{HOSTILE}/vmlinux",
        cmdline=f"console=ttyS0 x={HOSTILE}",
        serial_log=f"/logs/{HOSTILE}.log",
        smbios_asset_tag=f"{HOSTILE}.zstack.io",
        disks=[Disk(target="vda", path=f"/vols/{HOSTILE}.qcow2")],
        graphics=Graphics(password="<&'\">"),
        metadata={HOSTILE: HOSTILE, "vmName": "</zfleet:vm><evil/>", "empty": "", "x": "]]>"},
    )


DOMAINS = {
    "bare": _domain,
    "files-cdrom-nics-vnc": _files_cdrom_nics_vnc,
    "rbd": _rbd,
    "spice": _spice,
    "kernel-boot-serial-log": _kernel_boot,
    "host-model-topology": lambda: _domain(vcpus=4, sockets=2, cores=2, cpu_mode="host-model"),
    "host-passthrough": lambda: _domain(cpu_mode="host-passthrough"),
    "none-topology": lambda: _domain(vcpus=4, sockets=1, cores=4),
    "hostile-strings": _hostile_strings,
    "scsi-sata": lambda: _domain(disks=[Disk(target="sda", bus="scsi", path="/v/a.qcow2"),
                                        Disk(target="sdb", bus="sata", path="/v/b.qcow2")]),
}  # fmt: skip


def _xml(d: Domain) -> ET.Element:
    return ET.fromstring(domain_xml(d))


# --- round trips and schema -------------------------------------------------------------


@pytest.mark.parametrize("name", DOMAINS)
def test_round_trip(name):
    d = DOMAINS[name]()
    assert parse_domain(domain_xml(d)) == d


@pytest.mark.parametrize("name", DOMAINS)
def test_libvirt_schema_accepts_the_domain(name, tmp_path):
    path = tmp_path / "domain.xml"
    path.write_text(domain_xml(DOMAINS[name]()))
    _validate(path)


HOTPLUG_DEVICES = {
    "qcow2-file": Disk(target="vdc", path="/vols/data-2.qcow2", serial="vol-2"),
    "rbd": Disk(target="vdd", source_type="network", rbd_name="pool/vol-2", format="raw",
                rbd_hosts=[("10.0.0.1", 6789)], rbd_secret_uuid=SECRET),
    "iso": Disk(target="hdb", device="cdrom", bus="ide", path=f"/isos/{HOSTILE}.iso",
                format="raw"),
    "nic": Nic(mac="52:54:00:aa:bb:cc", bridge="br_eth1", target_dev="vnic1.1"),
}  # fmt: skip


@pytest.mark.parametrize("name", HOTPLUG_DEVICES)
def test_hotplug_device_xml_is_valid_and_parses_back(name, tmp_path):
    """virt-xml-validate has no schema for a lone device: validate it inside a domain."""
    device = HOTPLUG_DEVICES[name]
    xml = nic_xml(device) if isinstance(device, Nic) else disk_xml(device)
    root = _xml(_files_cdrom_nics_vnc())
    root.find("devices").append(ET.fromstring(xml))
    path = tmp_path / "domain.xml"
    path.write_text(ET.tostring(root, encoding="unicode"))
    _validate(path)
    parsed = parse_domain(path.read_text())
    assert device in (parsed.nics if isinstance(device, Nic) else parsed.disks)


def _validate(path: Path) -> None:
    result = run(["virt-xml-validate", str(path), "domain"], check=False, timeout=30)
    assert result.rc == 0, f"{result.stdout}{result.stderr}\n{path.read_text()}"


# --- what the XML says ------------------------------------------------------------------


def test_the_fixed_parts_of_every_domain():
    root = _xml(_files_cdrom_nics_vnc())
    assert root.get("type") == "kvm"
    assert root.find("os/type").attrib == {"arch": "x86_64", "machine": "pc"}
    assert root.find("os/boot") is None  # libvirt refuses <boot dev> next to <boot order>
    assert [el.tag for el in root.find("features")] == ["acpi", "apic"]
    assert {el.tag: el.text for el in root if el.tag.startswith("on_")} == {
        "on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "destroy"}
    assert root.find("memory").attrib == {"unit": "KiB"}
    assert root.findtext("memory") == root.findtext("currentMemory") == str(512 * 1024)
    assert root.find("devices/memballoon").get("model") == "virtio"
    assert root.find("devices/input").attrib == {"type": "tablet", "bus": "usb"}
    boots = [(el.find("target").get("dev"), el.find("boot").get("order"))
             for el in root.find("devices") if el.find("boot") is not None]
    assert boots == [("hdc", "2"), ("vda", "1"), ("vnic1.0", "3")]
    assert _xml(_domain()).find("devices/input") is None  # no graphics, no tablet


def test_rbd_disk_xml():
    disks = {el.find("target").get("dev"): el for el in _xml(_rbd()).iter("disk")}
    assert disks["hda"].find("auth") is None  # no secret: no cephx
    assert disks["hda"].find("source").get("name") == "isos/img-1"
    disk = disks["vda"]
    assert disk.find("source").attrib == {"protocol": "rbd", "name": "pool-1/vol-1"}
    assert [h.attrib for h in disk.findall("source/host")] == [
        {"name": "10.0.0.1", "port": "6789"}, {"name": "mon2.example", "port": "3300"}]
    assert disk.find("auth").get("username") == "zstack"
    assert disk.find("auth/secret").attrib == {"type": "ceph", "uuid": SECRET}
    assert disk.find("driver").attrib == {"name": "qemu", "type": "raw", "cache": "none"}


def test_graphics_xml():
    vnc = _xml(_files_cdrom_nics_vnc()).find("devices/graphics")
    assert (vnc.get("type"), vnc.get("port"), vnc.get("autoport")) == ("vnc", "-1", "yes")
    assert (vnc.get("listen"), vnc.get("passwd")) == ("0.0.0.0", "pw")
    spice = _xml(_spice()).find("devices/graphics")
    assert (spice.get("type"), spice.get("port"), spice.get("autoport")) == ("spice", "5930", None)
    assert spice.find("listen").attrib == {"type": "address", "address": "10.0.0.5"}


def test_kernel_boot_serial_log_and_smbios():
    root = _xml(_kernel_boot())
    assert root.findtext("os/kernel") == "/images/vmlinux"
    assert root.findtext("os/initrd") == "/images/initrd.cpio.gz"
    assert root.findtext("os/cmdline") == "console=ttyS0 no_timer_check quiet"
    for tag in ("serial", "console"):
        el = root.find(f"devices/{tag}")
        assert el.get("type") == "file"
        assert el.find("source").attrib == {"path": "/var/log/zfleet/vm-1.console",
                                            "append": "on"}  # fmt: skip
    assert root.find("devices/console/target").attrib == {"type": "serial", "port": "0"}
    assert root.find("sysinfo").get("type") == "smbios"
    assert root.findtext("sysinfo/chassis/entry[@name='asset']") == "vm-1.zstack.io"
    assert root.find("os/smbios").attrib == {"mode": "sysinfo"}
    pty = _xml(_domain())
    assert [pty.find(f"devices/{t}").get("type") for t in ("serial", "console")] == ["pty"] * 2
    assert pty.find("sysinfo") is None and pty.find("os/smbios") is None


@pytest.mark.parametrize(
    "mode, topology, cpu",
    [
        ("none", None, None),
        ("none", (2, 2), {}),
        ("host-model", None, {"mode": "host-model"}),
        ("host-model", (1, 4), {"mode": "host-model"}),
        ("host-passthrough", (4, 1), {"mode": "host-passthrough"}),
    ],
)
def test_cpu_modes_and_topology(mode, topology, cpu):
    sockets, cores = topology or (None, None)
    d = _domain(vcpus=4, sockets=sockets, cores=cores, cpu_mode=mode)
    el = _xml(d).find("cpu")
    assert (el.attrib if el is not None else None) == cpu
    if topology:
        assert el.find("topology").attrib == {
            "sockets": str(sockets), "dies": "1", "cores": str(cores), "threads": "1"}
    assert parse_domain(domain_xml(d)) == d


def test_hostile_strings_are_escaped_by_the_xml_library():
    d = _hostile_strings()
    xml = domain_xml(d)
    assert HOSTILE not in xml and "<evil/>" not in xml
    root = ET.fromstring(xml)  # well-formed
    assert root.findtext("name") == f"vm {HOSTILE}"
    vm = root.find(f"metadata/{{{ZFLEET_NS}}}vm")
    assert vm.get("uuid") == UUID
    entries = {e.get("key"): e.get("value") for e in vm}
    assert entries == d.metadata
    assert parse_domain(xml) == d


def test_metadata_is_namespaced_and_carries_the_vm_uuid():
    xml = domain_xml(_domain(metadata={"vmName": "web 1"}))
    assert f'xmlns:zfleet="{ZFLEET_NS}"' in xml
    assert f'<zfleet:vm uuid="{UUID}"' in xml
    assert '<zfleet:entry key="vmName" value="web 1" />' in xml
    assert f'<zfleet:vm uuid="{UUID}"' in domain_xml(_domain())  # even with no metadata


# --- normalisation ----------------------------------------------------------------------


def test_uuid_forms():
    assert _domain().uuid == LIBVIRT_UUID
    assert _domain(uuid=LIBVIRT_UUID.upper()).uuid == LIBVIRT_UUID
    assert _domain().vm_uuid == UUID
    assert Disk(target="vda", source_type="network", rbd_name="p/i",
                rbd_secret_uuid=SECRET.replace("-", "")).rbd_secret_uuid == SECRET  # fmt: skip


def test_cdroms_are_read_only_and_an_empty_one_is_raw():
    empty = Disk(target="hdc", device="cdrom", bus="ide")
    assert (empty.readonly, empty.format, empty.path) == (True, "raw", None)
    assert "<source" not in disk_xml(empty)
    iso = Disk(target="sda", device="cdrom", bus="sata", path="/i.iso", format="qcow2")
    assert (iso.readonly, iso.format) == (True, "qcow2")


def test_disks_are_kept_in_libvirt_order_and_macs_lowercase():
    d = _domain(disks=[Disk(target=t, path=f"/v/{t}") for t in ("vdaa", "vdb", "vda")]
                + [Disk(target="hdc", device="cdrom", bus="ide")],
                nics=[Nic(mac="52:54:00:AB:CD:EF", bridge="br0")])  # fmt: skip
    assert [disk.target for disk in d.disks] == ["hdc", "vda", "vdb", "vdaa"]
    assert d.nics[0].mac == "52:54:00:ab:cd:ef"


def test_next_disk_target():
    assert next_disk_target(set()) == "vda"
    assert next_disk_target({"vda", "vdc", "hdc"}, "virtio") == "vdb"
    assert next_disk_target({f"vd{c}" for c in "abcdefghijklmnopqrstuvwxyz"}) == "vdaa"
    assert next_disk_target({"hda", "hdc"}, "ide") == "hdb"
    assert next_disk_target({"sda"}, "scsi") == next_disk_target({"sda"}, "sata") == "sdb"
    with pytest.raises(ValueError, match="^bus: no free ide"):
        next_disk_target({"hda", "hdb", "hdc", "hdd"}, "ide")
    with pytest.raises(ValueError, match="^bus: "):
        next_disk_target(set(), "usb")


# --- parsing libvirt's own XML ----------------------------------------------------------

LIBVIRT_LIVE_XML = f"""<domain type='qemu' id='1'>
  <name>vm1</name>
  <uuid>{LIBVIRT_UUID}</uuid>
  <metadata xmlns:zfleet="{ZFLEET_NS}">
    <zfleet:vm uuid="{UUID}" cpu-mode="host-model"><zfleet:entry key="k" value="v"/></zfleet:vm>
  </metadata>
  <memory unit='KiB'>131072</memory>
  <currentMemory unit='KiB'>131072</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <resource><partition>/machine</partition></resource>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
  <features><acpi/><apic/></features>
  <cpu mode='custom' match='exact' check='full'>
    <model fallback='forbid'>EPYC</model><vendor>AMD</vendor>
    <feature policy='require' name='hypervisor'/>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/vols/root.qcow2' index='2'/>
      <backingStore type='file' index='3'>
        <format type='qcow2'/><source file='/cache/base.qcow2'/><backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <serial>vol1</serial>
      <boot order='1'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' cache='none'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
      <alias name='ide0-1-0'/>
      <address type='drive' controller='0' bus='1' target='0' unit='0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'><alias name='usb'/></controller>
    <interface type='bridge'>
      <mac address='52:54:00:00:00:01'/>
      <source bridge='br0'/>
      <target dev='vnet0'/>
      <model type='virtio'/>
      <alias name='net0'/>
    </interface>
    <serial type='pty'>
      <source path='/dev/pts/0'/>
      <target type='isa-serial' port='0'><model name='isa-serial'/></target>
    </serial>
    <console type='pty' tty='/dev/pts/0'>
      <source path='/dev/pts/0'/><target type='serial' port='0'/>
    </console>
    <input type='tablet' bus='usb'><alias name='input0'/></input>
    <input type='mouse' bus='ps2'/>
    <graphics type='vnc' port='6340' autoport='yes' listen='0.0.0.0'>
      <listen type='address' address='0.0.0.0'/>
    </graphics>
    <video><model type='cirrus' vram='16384' heads='1' primary='yes'/></video>
    <memballoon model='virtio'><alias name='balloon0'/></memballoon>
  </devices>
  <seclabel type='dynamic' model='dac' relabel='yes'><label>+0:+0</label></seclabel>
</domain>"""


def test_parse_ignores_what_libvirt_adds():
    """A running host-model VM as libvirt 9.0 shows it (trimmed): its cpu is rewritten
    into a custom model, the empty cdrom lost its format, the tap got a made-up name,
    and the VNC port was picked; the definition is what comes back."""
    assert parse_domain(LIBVIRT_LIVE_XML) == Domain(
        uuid=UUID,
        name="vm1",
        domain_type="qemu",
        memory_bytes=128 * MIB,
        vcpus=1,
        cpu_mode="host-model",
        disks=[Disk(target="vda", path="/vols/root.qcow2", boot_order=1, serial="vol1"),
               Disk(target="hdc", device="cdrom", bus="ide")],
        nics=[Nic(mac="52:54:00:00:00:01", bridge="br0")],
        graphics=Graphics(),
        metadata={"k": "v"},
    )  # fmt: skip


def test_parse_without_zfleet_metadata():
    xml = LIBVIRT_LIVE_XML.replace('cpu-mode="host-model"', "").replace("zfleet:vm", "x")
    d = parse_domain(xml.replace(f'xmlns:zfleet="{ZFLEET_NS}"', 'xmlns:zfleet="urn:other"'))
    assert (d.cpu_mode, d.metadata) == ("none", {})


@pytest.mark.parametrize(
    "old, new, field",
    [
        ("<disk type='file' device='disk'>", "<disk type='block' device='disk'>",
         "disks[0].type"),
        ("<interface type='bridge'>", "<interface type='network'>", "nics[0].type"),
        ("<serial type='pty'>", "<serial type='tcp'>", "serial_log"),
        ("<memory unit='KiB'>", "<memory unit='parsec'>", "memory_bytes"),
        ("<driver name='qemu' cache='none'/>", "<driver name='qemu'/>", "disks[1].cache"),
    ],
)
def test_parse_refuses_what_it_cannot_model(old, new, field):
    with pytest.raises(ValueError) as exc:
        parse_domain(LIBVIRT_LIVE_XML.replace(old, new))
    assert str(exc.value).startswith(f"{field}: "), str(exc.value)


# --- validation -------------------------------------------------------------------------

DISK = {"target": "vda", "path": "/v/a.qcow2"}
RBD = {"target": "vda", "source_type": "network", "rbd_name": "p/i"}
NIC = {"mac": "52:54:00:00:00:01", "bridge": "br0"}

BAD = [
    # (what to build, the field the error must start with)
    (lambda: _domain(memory_bytes=0), "memory_bytes"),
    (lambda: _domain(memory_bytes=-MIB), "memory_bytes"),
    (lambda: _domain(memory_bytes=MIB + 1024), "memory_bytes"),
    (lambda: _domain(memory_bytes="512M"), "memory_bytes"),
    (lambda: _domain(vcpus=0), "vcpus"),
    (lambda: _domain(vcpus=True), "vcpus"),
    (lambda: _domain(vcpus=4, sockets=2, cores=1), "sockets"),
    (lambda: _domain(vcpus=4, sockets=4), "sockets"),
    (lambda: _domain(vcpus=4, sockets=4, cores=0), "cores"),
    (lambda: _domain(cpu_mode="custom"), "cpu_mode"),
    (lambda: _domain(domain_type="qemu", cpu_mode="host-passthrough"), "cpu_mode"),
    (lambda: _domain(domain_type="xen"), "domain_type"),
    (lambda: _domain(uuid="not-a-uuid"), "uuid"),
    (lambda: _domain(uuid=UUID + "0"), "uuid"),
    (lambda: _domain(name=""), "name"),
    (lambda: _domain(name="a/b"), "name"),
    (lambda: _domain(name="a\nb"), "name"),
    (lambda: _domain(kernel="vmlinux"), "kernel"),
    (lambda: _domain(initrd="/i.gz"), "initrd"),
    (lambda: _domain(cmdline="quiet"), "cmdline"),
    (lambda: _domain(serial_log="console.log"), "serial_log"),
    (lambda: _domain(smbios_asset_tag=""), "smbios_asset_tag"),
    (lambda: _domain(metadata={"k": "a\x00b"}), "metadata['k']"),
    (lambda: _domain(metadata={"k": 1}), "metadata['k']"),
    (lambda: _domain(metadata={"": "v"}), "metadata key"),
    (lambda: _domain(metadata=[("k", "v")]), "metadata"),
    (lambda: _domain(disks=[DISK]), "disks[0]"),
    (lambda: _domain(disks=[Disk(**DISK), Disk(**{**DISK, "path": "/v/b"})]), "disks"),
    (lambda: _domain(nics=[Nic(**NIC), Nic(**{**NIC, "bridge": "br1"})]), "nics"),
    (lambda: _domain(nics=[Nic(**NIC, target_dev="t1"),
                           Nic(mac="52:54:00:00:00:02", bridge="br0", target_dev="t1")]),
     "nics"),  # fmt: skip
    (lambda: _domain(disks=[Disk(**DISK, boot_order=1)], nics=[Nic(**NIC, boot_order=1)]),
     "boot_order"),
    (lambda: _domain(graphics="vnc"), "graphics"),
    (lambda: Disk(target="xda", path="/a"), "target"),
    (lambda: Disk(target="vda", bus="ide", path="/a"), "target"),
    (lambda: Disk(target="hde", bus="ide", path="/a"), "target"),
    (lambda: Disk(target="vdaaa", path="/a"), "target"),
    (lambda: Disk(**DISK, device="floppy"), "device"),
    (lambda: Disk(**DISK, source_type="block"), "source_type"),
    (lambda: Disk(**DISK, format="vmdk"), "format"),
    (lambda: Disk(**DISK, bus="usb"), "bus"),
    (lambda: Disk(**DISK, cache="unsafe"), "cache"),
    (lambda: Disk(**DISK, device="cdrom"), "bus"),
    (lambda: Disk(**DISK, boot_order=0), "boot_order"),
    (lambda: Disk(**DISK, serial="vol 1/2"), "serial"),
    (lambda: Disk(**DISK, readonly="yes"), "readonly"),
    (lambda: Disk(target="vda"), "path"),
    (lambda: Disk(target="vda", path="rel/a.qcow2"), "path"),
    (lambda: Disk(**DISK, rbd_name="p/i"), "rbd_name"),
    (lambda: Disk(**DISK, rbd_hosts=[("h", 1)]), "rbd_hosts"),
    (lambda: Disk(target="vda", source_type="network"), "rbd_name"),
    (lambda: Disk(**{**RBD, "rbd_name": "image-without-pool"}), "rbd_name"),
    (lambda: Disk(**RBD, path="/a"), "path"),
    (lambda: Disk(**RBD, rbd_hosts=[("10.0.0.1", 0)]), "rbd_hosts[0]"),
    (lambda: Disk(**RBD, rbd_hosts=[("-bad host", 6789)]), "rbd_hosts[0]"),
    (lambda: Disk(**RBD, rbd_hosts=["10.0.0.1:6789"]), "rbd_hosts[0]"),
    (lambda: Disk(**RBD, rbd_secret_uuid="nope"), "rbd_secret_uuid"),
    (lambda: Disk(**RBD, rbd_user="zstack"), "rbd_user"),
    (lambda: Disk(**RBD, rbd_user="a b", rbd_secret_uuid=SECRET), "rbd_user"),
    (lambda: Nic(**{**NIC, "mac": "52:54:00:00:00"}), "mac"),
    (lambda: Nic(**{**NIC, "mac": "01:00:5e:00:00:01"}), "mac"),
    (lambda: Nic(**{**NIC, "bridge": "b" * 16}), "bridge"),
    (lambda: Nic(**{**NIC, "bridge": "br 0"}), "bridge"),
    (lambda: Nic(**NIC, model="ne2k_pci"), "model"),
    (lambda: Nic(**NIC, target_dev="vnet0"), "target_dev"),
    (lambda: Nic(**NIC, target_dev="t" * 16), "target_dev"),
    (lambda: Nic(**NIC, boot_order=0), "boot_order"),
    (lambda: Graphics(kind="rdp"), "kind"),
    (lambda: Graphics(listen="localhost"), "listen"),
    (lambda: Graphics(port=5900 - 1), "port"),
    (lambda: Graphics(password="123456789"), "password"),
    (lambda: Graphics(password=""), "password"),
]


@pytest.mark.parametrize("build, field", BAD, ids=[f"{i}-{f}" for i, (_, f) in enumerate(BAD)])
def test_validation_errors_name_the_field(build, field):
    with pytest.raises(ValueError) as exc:
        build()
    assert str(exc.value).startswith(f"{field}: "), str(exc.value)


def test_objects_changed_after_construction_are_checked_again_before_emitting():
    d = _domain(disks=[Disk(**DISK)], nics=[Nic(**NIC)])
    d.disks.append(Disk(**{**DISK, "path": "/v/b.qcow2"}))
    with pytest.raises(ValueError, match=r"^disks: duplicate target 'vda'"):
        domain_xml(d)
    d = replace(d, disks=[Disk(**DISK)])
    d.nics[0].bridge = "b" * 16
    with pytest.raises(ValueError, match=r"^nics\[0\]\.bridge: "):
        domain_xml(d)
    with pytest.raises(ValueError, match=r"^bridge: "):
        nic_xml(d.nics[0])
    disk = Disk(**DISK)
    disk.cache = "unsafe"
    with pytest.raises(ValueError, match=r"^cache: "):
        disk_xml(disk)
