"""Hot-plug without libvirt: the command models (ZStack's field names, hostile values)
and the pure decisions the device driver takes on a running domain's devices."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest
from pydantic import ValidationError

from agentlib.errors import AgentError
from kvmagent.drivers.devices import (
    DeviceDriver,
    attached_disk,
    cdrom_at,
    disk_with_source,
    nic_with_mac,
    source_of,
)
from kvmagent.drivers.domain import Disk, Domain, Nic, domain_xml
from kvmagent.hostchecks import require_bridge, require_file
from kvmagent.models.hotplug import AttachIsoCmd, DetachIsoCmd, NicDeviceCmd, VolumeDeviceCmd

VM = "0123456789abcdef0123456789abcdef"
VOL = "fedcba9876543210fedcba9876543210"
SECRET = "fedcba98-7654-3210-fedc-ba9876543210"

ROOT = Disk(target="vda", path="/vol/root.qcow2")
DATA = Disk(target="vdb", path="/vol/data.qcow2")
EMPTY_CDROM = Disk(target="hdc", device="cdrom", bus="ide")
RBD = Disk(target="vdc", source_type="network", rbd_name="pool/img", format="raw",
           rbd_hosts=[("10.0.0.1", 6789)], rbd_secret_uuid=SECRET)


def volume(**kw) -> dict:
    return {"volumeUuid": VOL, "deviceId": 1, "installPath": "/vol/data.qcow2", **kw}


# --- models -------------------------------------------------------------------------------


def test_vm_uuid_is_read_from_vmuuid_or_zstacks_vminstanceuuid():
    for key in ("vmUuid", "vmInstanceUuid"):
        cmd = VolumeDeviceCmd.model_validate({key: VM, "volume": volume()})
        assert cmd.vm_uuid == VM and cmd.volume.install_path == "/vol/data.qcow2"
    with pytest.raises(ValidationError) as err:
        VolumeDeviceCmd.model_validate({"volume": volume()})
    assert err.value.errors()[0]["loc"] == ("vmUuid",)


@pytest.mark.parametrize("body, field", [
    ({"vmUuid": VM, "volume": volume(installPath="/vol/../etc/passwd")},
     ("volume", "installPath")),
    ({"vmUuid": "../x", "volume": volume()}, ("vmUuid",)),
    ({"vmUuid": VM, "volume": volume(deviceId=26)}, ("volume", "deviceId")),
])
def test_hostile_volume_commands_are_refused_naming_the_field(body, field):
    with pytest.raises(ValidationError) as err:
        VolumeDeviceCmd.model_validate(body)
    assert err.value.errors()[0]["loc"] == field


def test_nic_and_iso_commands():
    nic = NicDeviceCmd.model_validate({"vmUuid": VM, "nic": {
        "uuid": VOL, "mac": "52:54:00:AA:00:01", "bridgeName": "br0", "deviceId": 1}})
    assert nic.nic.bridge_name == "br0"
    with pytest.raises(ValidationError):
        NicDeviceCmd.model_validate({"vmUuid": VM, "nic": {
            "uuid": VOL, "mac": "52:54:00:aa:00:01", "bridgeName": "br0;x", "deviceId": 1}})
    # ZStack's IsoTO calls the uuid imageUuid; the path must be a clean absolute path
    iso = AttachIsoCmd.model_validate({"vmUuid": VM, "iso": {"imageUuid": VOL,
                                                             "path": "/isos/a.iso"}})
    assert (iso.iso.iso_uuid, iso.iso.path) == (VOL, "/isos/a.iso")
    with pytest.raises(ValidationError) as err:
        AttachIsoCmd.model_validate({"vmUuid": VM, "iso": {"path": "isos/../a.iso"}})
    assert err.value.errors()[0]["loc"] == ("iso", "path")
    assert DetachIsoCmd.model_validate({"vmUuid": VM}).iso_uuid is None


# --- decisions on the running domain -------------------------------------------------------


def test_a_disk_already_at_its_target_is_attached_and_a_free_target_is_not():
    assert attached_disk([ROOT, DATA], Disk(target="vdb", path="/vol/data.qcow2")) == DATA
    assert attached_disk([ROOT], DATA) is None
    same_rbd = Disk(target="vdc", source_type="network", rbd_name="pool/img", format="raw")
    assert attached_disk([ROOT, RBD], same_rbd) == RBD


def test_another_disk_at_the_target_or_the_source_elsewhere_is_a_conflict():
    with pytest.raises(AgentError, match="target vdb already holds /vol/data.qcow2: "
                                         "detach it first or use another deviceId"):
        attached_disk([ROOT, DATA], Disk(target="vdb", path="/vol/other.qcow2"))
    with pytest.raises(AgentError, match="/vol/data.qcow2 is already attached as vdb, "
                                         "not vdd"):
        attached_disk([ROOT, DATA], Disk(target="vdd", path="/vol/data.qcow2"))
    with pytest.raises(AgentError, match="target hdc already holds an empty cdrom drive"):
        attached_disk([ROOT, EMPTY_CDROM], Disk(target="hdc", bus="ide", path="/vol/x"))


def test_detach_finds_a_disk_by_what_it_reads_not_by_its_target():
    assert disk_with_source([ROOT, DATA], Disk(target="vdx", path="/vol/data.qcow2")) == DATA
    assert disk_with_source([ROOT], DATA) is None
    iso = Disk(target="hdc", device="cdrom", bus="ide", path="/vol/data.qcow2")
    assert disk_with_source([ROOT, iso], DATA) is None  # media is not a data volume
    assert source_of(RBD) == "rbd:pool/img" and source_of(EMPTY_CDROM) is None


def test_nics_by_mac_and_the_cdrom_by_target():
    nics = [Nic(mac="52:54:00:00:00:01", bridge="br0")]
    assert nic_with_mac(nics, "52:54:00:00:00:01") == nics[0]
    assert nic_with_mac(nics, "52:54:00:00:00:02") is None
    assert cdrom_at([ROOT, EMPTY_CDROM], "hdc") == EMPTY_CDROM
    assert cdrom_at([ROOT, Disk(target="hdc", bus="ide", path="/vol/x")], "hdc") is None


def test_host_checks_name_the_field(tmp_path):
    require_file("iso.path", __file__)
    with pytest.raises(AgentError, match=f"^iso.path: no such file on this host: {tmp_path}"):
        require_file("iso.path", str(tmp_path))  # a directory is not media
    with pytest.raises(AgentError, match="^nic.bridgeName: no bridge 'lo' on this host$"):
        require_bridge("nic.bridgeName", "lo")  # a link, but not a bridge


# --- waiting for an unplug (a stand-in for libvirt's domain) --------------------------------


class FakeDomain:
    """Lists ``nics`` until the guest released the unplugged one after ``polls`` reads
    (never, if None), as libvirt does while the guest answers the ACPI eject."""

    def __init__(self, nics: list[Nic], polls: int | None):
        self.nics, self.polls, self.unplugging = nics, polls, None

    def name(self) -> str:
        return VM

    def isActive(self) -> bool:  # noqa: N802 - libvirt's name
        return True

    def XMLDesc(self, flags: int) -> str:  # noqa: N802
        if self.unplugging is not None and self.polls is not None:
            self.polls -= 1
            if self.polls < 0:
                self.nics = [n for n in self.nics if n.mac != self.unplugging]
        return domain_xml(Domain(uuid=VM, name=VM, memory_bytes=128 << 20, vcpus=1,
                                 nics=self.nics))

    def detachDeviceFlags(self, xml: str, flags: int) -> None:  # noqa: N802
        self.unplugging = ET.fromstring(xml).find("mac").get("address")


class FakeVms:
    def __init__(self, dom: FakeDomain):
        self.dom = dom

    def domain(self, vm_uuid: str) -> FakeDomain:
        return self.dom


NICS = [Nic(mac="52:54:00:00:00:01", bridge="br0"), Nic(mac="52:54:00:00:00:02", bridge="br0")]


def test_detach_returns_once_the_guest_released_the_device():
    dom = FakeDomain(list(NICS), polls=3)
    assert DeviceDriver(FakeVms(dom), unplug_timeout=5).detach_nic(VM, "52:54:00:00:00:02")
    assert dom.nics == NICS[:1]
    # not there (any more): nothing to do
    assert not DeviceDriver(FakeVms(dom)).detach_nic(VM, "52:54:00:00:00:02")


def test_detach_fails_clearly_when_the_guest_never_releases_the_device():
    devices = DeviceDriver(FakeVms(FakeDomain(list(NICS), polls=None)), unplug_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(AgentError, match=f"vm {VM}: the guest did not release nic "
                                         "52:54:00:00:00:02 within 0.3s .* libvirt still "
                                         "lists it"):
        devices.detach_nic(VM, "52:54:00:00:00:02")
    assert 0.3 <= time.monotonic() - started < 1
