"""The test guest as a bootable disk image: made without mounting, cached, and booted by
the BIOS from a root volume cloned from it, through a real kvmagent (no kernel on the
agent's command)."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from agentlib.shell import run
from devcluster import guestdisk
from devcluster.guestimage import CMDLINE

pytestmark = pytest.mark.integration

MIB = 1 << 20


def qemu_img_info(path) -> dict:
    return json.loads(run(["qemu-img", "info", "--output=json", path]).stdout)


def test_disk_is_raw_and_qcow2_of_its_size_with_one_bootable_fat_partition(guest_disk):
    raw, qcow2 = qemu_img_info(guest_disk.raw), qemu_img_info(guest_disk.qcow2)
    assert (raw["format"], raw["virtual-size"]) == ("raw", guest_disk.size)
    assert (qcow2["format"], qcow2["virtual-size"]) == ("qcow2", guest_disk.size)
    assert "backing-filename" not in qcow2  # an image stands alone
    assert guest_disk.size % MIB == 0 and 4 * MIB < guest_disk.size <= 16 * MIB

    table = json.loads(run(["sfdisk", "--json", guest_disk.raw]).stdout)["partitiontable"]
    [part] = table["partitions"]
    assert (table["label"], part["start"], part["type"], part.get("bootable")) == (
        "dos", 2048, "e", True)
    assert part["start"] + part["size"] == guest_disk.size // 512
    mbr = guest_disk.raw.read_bytes()[:guestdisk.MBR_CODE]
    assert mbr == guestdisk.MBR_BIN.read_bytes()[:guestdisk.MBR_CODE]

    fat = f"{guest_disk.raw}@@{guestdisk.PART_START}"
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    listing = run(["mdir", "-a", "-b", "-i", fat, "::"], env=env).stdout.split()
    assert sorted(listing) == ["::/initrd.gz", "::/ldlinux.c32", "::/ldlinux.sys",
                               "::/syslinux.cfg", "::/vmlinuz"]
    cfg = run(["mtype", "-i", fat, "::syslinux.cfg"], env=env).stdout
    assert f"APPEND {CMDLINE}\n" in cfg and "KERNEL /vmlinuz" in cfg


def test_build_is_cached_and_idempotent(guest_disk, guest_image, tmp_path):
    """A fresh cache with the kernel already fetched: the disk is made once, then reused."""
    kdir = guest_image.kernel.parent
    shutil.copytree(kdir, tmp_path / "kernel" / kdir.name)
    t0 = time.monotonic()
    first = guestdisk.build(tmp_path)
    t1 = time.monotonic()
    second = guestdisk.build(tmp_path)
    t2 = time.monotonic()
    print(f"\ndisk made in {t1 - t0:.2f}s, cached build {t2 - t1:.3f}s")
    assert first == second
    assert first.raw.stat().st_mtime_ns == second.raw.stat().st_mtime_ns
    # named by what it is built from, and reproducible: the same inputs, the same bytes
    assert (first.raw.name, first.qcow2.name, first.size) == (
        guest_disk.raw.name, guest_disk.qcow2.name, guest_disk.size)
    assert first.raw.read_bytes() == guest_disk.raw.read_bytes()
    assert first.qcow2.read_bytes() == guest_disk.qcow2.read_bytes()
    assert not list(tmp_path.glob("*.tmp"))


def test_root_volume_cloned_from_the_image_boots_through_kvmagent(kvm_host, guest_disk):
    cmd = kvm_host.start_cmd(bootDev=["hd"])
    for key in ("bootKernel", "bootInitrd", "bootCmdline"):
        del cmd[key]
    vm = cmd["vmInstanceUuid"]
    root = cmd["rootVolume"]["installPath"]
    # the root volume: a 64 MiB qcow2 backed by the image, as local storage clones one
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", guest_disk.qcow2, "-F", "qcow2",
         root, "64M"])  # fmt: skip
    image_before = guest_disk.qcow2.read_bytes()

    started = time.monotonic()
    reply = kvm_host.call_async("/vm/start", cmd)
    assert reply["success"], reply
    report = kvm_host.wait_console(vm, lambda r: "eth0" in r.leases and r, "DHCP lease")
    print(f"\n/vm/start -> lease from disk {time.monotonic() - started:.1f}s")

    assert report.ip("eth0").startswith("10.250.0.")
    assert report.leases["eth0"]["mac"] == cmd["nics"][0]["mac"]
    assert report.disks["vda"] == 64 * MIB
    text = kvm_host.console_text(vm)
    assert "SYSLINUX" in text.split("ZFLEET-")[0]  # the BIOS booted the disk's loader
    xml = kvm_host.virsh("dumpxml", vm)
    assert "<kernel>" not in xml and str(guest_disk.qcow2) in xml  # the backing chain
    kvm_host.wait_console(vm, lambda r: r.ready, "guest READY")
    reply = kvm_host.call_async("/vm/stop", {"uuid": vm, "timeout": 20})
    assert reply["vmState"] == "Stopped", reply
    assert kvm_host.console(vm).poweroff  # graceful: the guest saw the ACPI button
    assert guest_disk.qcow2.read_bytes() == image_before  # writes went to the clone only
    assert qemu_img_info(root)["backing-filename"] == str(guest_disk.qcow2)
