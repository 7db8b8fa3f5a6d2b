"""Live migration between two simulated hosts through their real kvmagents: the guest
keeps running (one boot in its console, CPU time still growing, a disk hot-plugged on
the destination reaches it) and neither agent reports it stopped, crashed or started.

The hosts share this machine's file system, so a volume under one host's directory is
"shared storage" for the other. Local storage (the ``copy`` policy) is simulated by
mounting a different directory at the same path inside each host's mount namespace.
Migration times (call -> callback) are printed; run with -s to see them.
"""

import subprocess
import time
import uuid
from pathlib import Path

import libvirt
import pytest

from devcluster.guestconsole import HOTPLUG
from devcluster.kvmhost import storage_dir
from tests.fixtures.ceph import admin_key

pytestmark = pytest.mark.integration

OUT_OF_BAND = ("/kvm/reportvmshutdown", "/kvm/reportvmcrash", "/kvm/reportvmstart",
               "/kvm/reportvmreboot")


def boot(kvm, **overrides) -> str:
    cmd = kvm.start_cmd(**overrides)
    reply = kvm.call_async("/vm/start", cmd)
    assert reply["success"], reply
    vm = cmd["vmInstanceUuid"]
    kvm.wait_console(vm, lambda r: r.ready, "guest boot")
    return vm


def migrate(src, dest, vm, **fields) -> tuple[dict, float]:
    started = time.monotonic()
    reply = src.call_async("/vm/migrate", {"vmUuid": vm, "destHostIp": dest.host.mgmt_address,
                                           **fields}, timeout=120)
    return reply, time.monotonic() - started


def states(kvm) -> dict:
    return kvm.call("/vm/vmsync").json()["states"]


def downtime_ms(kvm, vm) -> int:
    """The pause the guest saw, as the destination's completed incoming job reports it."""
    conn = kvm.libvirtd.open()
    try:
        stats = conn.lookupByName(vm).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        return stats.get("downtime", -1)
    finally:
        conn.close()


def cpu_time_grows(kvm, vm) -> bool:
    conn = kvm.libvirtd.open()
    try:
        dom = conn.lookupByName(vm)
        before = dom.info()[4]
        time.sleep(1)
        return dom.info()[4] > before
    finally:
        conn.close()


def out_of_band(*hosts) -> list:
    time.sleep(0.5)  # a report would be sent at once
    return [(r.headers.get("commandpath"), r.body) for kvm in hosts
            for r in kvm.receiver.received if r.headers.get("commandpath") in OUT_OF_BAND]


def test_live_migration_of_a_vm_on_shared_storage(kvm_host_factory):
    a, b = kvm_host_factory(), kvm_host_factory()
    vm = boot(a)

    # too slow to finish in time: aborted, the VM stays where it was
    a.virsh("migrate-setspeed", vm, "1")  # MiB/s
    reply, took = migrate(a, b, vm, timeout=2)
    assert reply["success"] is False, reply
    assert "did not finish within 2s; aborted, the VM keeps running" in reply["error"]
    assert took < 10, f"abort took {took:.1f}s"
    print(f"\ntimeout 2s -> aborted, callback after {took:.2f}s")
    assert states(a) == {vm: "Running"} and states(b) == {}
    assert "migrating: " in (a.host.dir / "log" / "kvmagent.log").read_text()  # progress
    # cancelled (/job/cancel): aborted the same way
    task = uuid.uuid4().hex
    assert a.post_async("/vm/migrate", {"vmUuid": vm, "destHostIp": b.host.mgmt_address},
                        task).status_code == 200
    time.sleep(1)
    assert a.call("/job/cancel", {"taskUuid": task}).json()["success"]
    [reply] = a.receiver.wait(timeout=10, taskuuid=task)
    assert "was cancelled; aborted, the VM keeps running" in reply.body["error"], reply.body
    assert states(a) == {vm: "Running"} and states(b) == {}
    # the destination saw its incoming domain fail twice: not a crash of this VM
    assert out_of_band(a, b) == []

    a.virsh("migrate-setspeed", vm, "100000")
    reply, took = migrate(a, b, vm, timeout=60)
    assert reply == {"success": True, "error": ""}, reply
    print(f"shared-file migration: {took:.2f}s (call -> callback), "
          f"downtime {downtime_ms(b, vm)} ms")
    assert states(b) == {vm: "Running"} and states(a) == {}
    assert cpu_time_grows(b, vm)
    # the same guest, not a new boot: its console (same file, appended) has one boot
    assert a.console_text(vm).count("ZFLEET-READY") == 1
    # alive on B: a disk hot-plugged through B's agent reaches the guest
    data = storage_dir(b.host) / "volumes" / f"{vm}-data.qcow2"
    data.parent.mkdir(exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(data), "16M"], check=True)
    reply = b.call_async("/vm/attachdatavolume", {"vmUuid": vm, "volume": {
        "volumeUuid": uuid.uuid4().hex, "deviceId": 1, "installPath": str(data)}})
    assert reply["success"], reply
    a.wait_console(vm, lambda r: r.disks.get("vdb") == 16 << 20, "hot-plug on B", timeout=20)
    assert any(tag == HOTPLUG for tag, _ in a.console(vm).events)
    assert out_of_band(a, b) == []

    # migrating it again (a retried command) is a success that changes nothing
    reply, _ = migrate(a, b, vm)
    assert reply["success"], reply
    assert states(b) == {vm: "Running"}

    assert b.call_async("/vm/destroy", {"uuid": vm})["success"]


def _private_dir(kvm, common: Path) -> Path:
    """A directory of ``kvm``'s own mounted at ``common`` inside its mount namespace."""
    own = kvm.host.dir / "local-storage"
    own.mkdir()
    kvm.host.bind(own, str(common))
    return own


def test_copy_policy_copies_a_local_disk(kvm_host_factory, tmp_path):
    a, b = kvm_host_factory(), kvm_host_factory()
    common = storage_dir(a.host) / f"local-{uuid.uuid4().hex[:8]}"  # where A keeps VM files
    common.mkdir()
    try:
        a_dir, b_dir = _private_dir(a, common), _private_dir(b, common)
        root = common / "root.qcow2"
        a.host.run(["qemu-img", "create", "-q", "-f", "qcow2", str(root), "64M"])
        a.host.run(["qemu-io", "-c", "write -P 0xab 1M 256k", str(root)])
        vm = boot(a, rootVolume={"volumeUuid": uuid.uuid4().hex, "deviceId": 0,
                                 "installPath": str(root)})
        # what the coordinator does first: the same file, empty, on the destination
        b.host.run(["qemu-img", "create", "-q", "-f", "qcow2", str(root), "64M"])
        assert (a_dir / "root.qcow2").stat().st_ino != (b_dir / "root.qcow2").stat().st_ino

        reply, took = migrate(a, b, vm, storageMigrationPolicy="copy", timeout=60)
        assert reply == {"success": True, "error": ""}, reply
        print(f"\nlocal-disk copy migration: {took:.2f}s (call -> callback), "
              f"downtime {downtime_ms(b, vm)} ms")
        assert states(b) == {vm: "Running"} and states(a) == {}
        assert cpu_time_grows(b, vm)
        assert a.console_text(vm).count("ZFLEET-READY") == 1
        assert out_of_band(a, b) == []

        assert b.call_async("/vm/destroy", {"uuid": vm})["success"]
        # B's own file now holds what was written into A's before the VM started
        subprocess.run(["qemu-io", "-c", "read -P 0xab 1M 256k", str(b_dir / "root.qcow2")],
                       check=True, capture_output=True)
        cmp = subprocess.run(["qemu-img", "compare", str(a_dir / "root.qcow2"),
                              str(b_dir / "root.qcow2")], capture_output=True, text=True)
        assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    finally:
        common.rmdir()


def test_copy_policy_without_the_destination_file_fails_and_the_vm_stays(kvm_host_factory):
    a, b = kvm_host_factory(), kvm_host_factory()
    common = storage_dir(a.host) / f"local-{uuid.uuid4().hex[:8]}"  # where A keeps VM files
    common.mkdir()
    try:
        _private_dir(a, common), _private_dir(b, common)
        root = common / "root.qcow2"
        a.host.run(["qemu-img", "create", "-q", "-f", "qcow2", str(root), "64M"])
        vm = boot(a, rootVolume={"volumeUuid": uuid.uuid4().hex, "deviceId": 0,
                                 "installPath": str(root)})
        reply, _ = migrate(a, b, vm, storageMigrationPolicy="copy", timeout=60)
        assert reply["success"] is False and f"vm {vm}: migration to" in reply["error"]
        assert "their files must first exist on the destination" in reply["error"]
        print(f"\nno destination file: {reply['error']}")
        assert states(a) == {vm: "Running"} and states(b) == {}
        assert out_of_band(a, b) == []
        assert a.call_async("/vm/destroy", {"uuid": vm})["success"]
    finally:
        common.rmdir()


def test_live_migration_of_a_vm_on_rbd(rbd_clone, kvm_host_factory):
    a, b = kvm_host_factory(), kvm_host_factory()
    secret = str(uuid.uuid4())
    for kvm in (a, b):  # every host that may run the VM needs the secret first
        reply = kvm.call("/vm/createcephsecret",
                         {"uuid": secret, "userKey": admin_key(rbd_clone.cluster)}).json()
        assert reply["success"], reply
    vm = boot(a, rootVolume=rbd_clone.volume_to(secret))

    reply, took = migrate(a, b, vm, timeout=60)
    assert reply == {"success": True, "error": ""}, reply
    print(f"\nrbd migration: {took:.2f}s (call -> callback), downtime {downtime_ms(b, vm)} ms")
    assert states(b) == {vm: "Running"} and states(a) == {}
    assert cpu_time_grows(b, vm)
    assert a.console_text(vm).count("ZFLEET-READY") == 1
    assert f"name='{rbd_clone.pool}/vm-root'" in b.virsh("dumpxml", vm)
    assert out_of_band(a, b) == []
    assert b.call_async("/vm/destroy", {"uuid": vm})["success"]


def test_migrating_a_vm_that_is_not_here_fails_clearly(kvm_host_factory):
    a, b = kvm_host_factory(), kvm_host_factory()
    vm = uuid.uuid4().hex
    reply, _ = migrate(a, b, vm)
    assert reply == {"success": False, "error": f"vm {vm} is not running on this host "
                                                f"(nor on {b.host.mgmt_address})"}
    assert states(b) == {}
