"""A VM opens only files of this host's storage: ``/vm/start`` and hot-plug refuse any
other host file as a disk, ISO or kernel, a symlink out of the storage included (a 400
naming the field, so the command is never accepted and no domain is defined).
``etc_decoy`` stands in for ``/etc/shadow``: a regression must not let libvirt chown or
qemu open the real one."""

from __future__ import annotations

import uuid

import pytest

from devcluster.kvmhost import storage_dir

pytestmark = pytest.mark.integration

LONG = "x" * 300  # a file name over NAME_MAX (255 bytes)


def refused(kvm, path: str, body: dict, field: str) -> None:
    r = kvm.post_async(path, body)
    assert r.status_code == 400 and r.json()["success"] is False, r.text
    assert r.json()["error"].startswith(f"{field}: "), r.text


def test_vm_start_refuses_host_files_outside_its_storage(kvm_host, etc_decoy):
    link = storage_dir(kvm_host.host) / "shadow.qcow2"
    link.symlink_to(etc_decoy)
    vm = uuid.uuid4().hex
    good = kvm_host.start_cmd(vm)
    root = good["rootVolume"]
    data = {**root, "volumeUuid": uuid.uuid4().hex, "deviceId": 1}
    for overrides, field in [
        ({"rootVolume": {**root, "installPath": str(etc_decoy)}}, "rootVolume.installPath"),
        ({"rootVolume": {**root, "installPath": str(link)}}, "rootVolume.installPath"),
        ({"dataVolumes": [{**data, "installPath": "/root/.ssh/zfleet-no-such-key"}]},
         "dataVolumes.0.installPath"),
        ({"isoPath": str(etc_decoy), "bootDev": ["cdrom", "hd"]}, "isoPath"),
        ({"bootKernel": str(etc_decoy)}, "bootKernel"),
        ({"bootKernel": "/proc/self/environ"}, "bootKernel"),
        ({"bootKernel": "/dev/zero"}, "bootKernel"),
        ({"bootInitrd": str(etc_decoy)}, "bootInitrd"),
        ({"rootVolume": {**root, "installPath": f"{storage_dir(kvm_host.host)}/{LONG}"}},
         "rootVolume.installPath"),
    ]:
        refused(kvm_host, "/vm/start", {**good, **overrides}, field)
    assert vm not in kvm_host.virsh("list", "--all", "--name")


def test_hotplug_refuses_host_files_outside_its_storage(kvm_host, etc_decoy):
    vm = uuid.uuid4().hex
    volume = {"volumeUuid": uuid.uuid4().hex, "deviceId": 1, "installPath": str(etc_decoy)}
    refused(kvm_host, "/vm/attachdatavolume", {"vmUuid": vm, "volume": volume},
            "volume.installPath")
    refused(kvm_host, "/vm/iso/attach", {"vmUuid": vm, "iso": {"path": str(etc_decoy)}},
            "iso.path")
    refused(kvm_host, "/vm/iso/attach", {"vmUuid": vm, "iso": {"path": f"/tmp/{LONG}"}},
            "iso.path")
