"""A VM whose root disk is an RBD clone in a real Ceph cluster: the cephx key goes into a
libvirt secret (/vm/createcephsecret) and qemu opens the image through librbd; the clone
is made by librbd directly, or by cephagent from an image it imported."""

import time
import uuid

import pytest

from agentlib.receiver import CallbackReceiver
from devcluster import procs
from tests.fixtures.ceph import RbdVolume, admin_key
from tests.fixtures.cephagent import start_cephagent
from tests.fixtures.sftpbs import make_qcow2

pytestmark = pytest.mark.integration


def test_secret_is_private_idempotent_and_deletable(kvm_host, ceph_on_host_network):
    secret = str(uuid.uuid4())
    key = admin_key(ceph_on_host_network)
    body = {"uuid": secret, "userKey": key}
    for _ in range(2):  # defining it again is a success
        assert kvm_host.call("/vm/createcephsecret", body).json() == {"success": True,
                                                                       "error": ""}
    listed = kvm_host.virsh("secret-list")
    assert secret in listed and f"zfleet-ceph-{secret}" in listed
    # private: libvirt never hands the key back
    with pytest.raises(Exception, match="private"):
        kvm_host.virsh("secret-get-value", secret)
    # the same uuid in 32-hex form is the same secret, updated in place
    assert kvm_host.call("/vm/createcephsecret", {**body, "uuid": secret.replace("-", ""),
                                                  "userName": "other"}).json()["success"]
    assert len([ln for ln in kvm_host.virsh("secret-list").splitlines() if secret in ln]) == 1
    assert "client.other" in kvm_host.virsh("secret-dumpxml", secret)

    bad = kvm_host.call("/vm/createcephsecret", {**body, "userKey": "not base64!"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("userKey: not a base64")
    assert "not base64!" not in bad.text
    logs = [*kvm_host.host.dir.glob("log/*"), *kvm_host.host.dir.glob("logs/*")]
    assert logs and not [f for f in logs if key in f.read_text(errors="replace")]

    for _ in range(2):  # removing a missing secret is a success too
        assert kvm_host.call("/vm/deletecephsecret", {"uuid": secret}).json()["success"]
    assert secret not in kvm_host.virsh("secret-list")


def test_vm_boots_with_an_rbd_clone_as_root_disk(rbd_clone, kvm_host):
    secret = str(uuid.uuid4())
    reply = kvm_host.call("/vm/createcephsecret",
                          {"uuid": secret, "userKey": admin_key(rbd_clone.cluster)}).json()
    assert reply["success"], reply
    cmd = kvm_host.start_cmd(rootVolume=rbd_clone.volume_to(secret))
    vm = cmd["vmInstanceUuid"]

    started = time.monotonic()
    reply = kvm_host.call_async("/vm/start", cmd)
    start_call = time.monotonic() - started
    assert reply["success"], reply
    report = kvm_host.wait_console(vm, lambda r: r.ready and r, "guest boot")
    booted = time.monotonic() - started
    assert report.disks["vda"] == rbd_clone.size

    xml = kvm_host.virsh("dumpxml", vm)
    assert f"name='{rbd_clone.pool}/vm-root'" in xml
    assert secret in xml
    # the guest kernel read the disk (partition scan): qemu reads the clone through librbd
    stats = dict(line.split()[1:] for line in kvm_host.virsh("domblkstat", vm, "vda")
                 .splitlines() if line.strip())
    assert int(stats["rd_req"]) > 0, stats
    print(f"rbd boot: start call {start_call:.2f}s, ready after {booted:.2f}s, "
          f"blkstat {stats}")

    assert kvm_host.call_async("/vm/destroy", {"uuid": vm})["success"]


def test_vm_boots_from_a_clone_of_an_image_imported_through_cephagent(
        ceph_on_host_network, kvm_host, tmp_path):
    """The ZStack 0.9 path end to end: cephagent downloads a qcow2 into the backup storage
    pool (converted to raw), commits a snapshot of it, clones it copy-on-write into the
    primary storage's root volume pool, and the VM boots from that clone with the cephx
    key the primary storage's init answered."""
    cluster = ceph_on_host_network
    ps_uuid, bs_uuid = uuid.uuid4().hex, uuid.uuid4().hex
    with CallbackReceiver() as receiver:
        agent = start_cephagent(cluster, tmp_path / "cephagent", receiver)
        try:
            image = agent.files / "guest.qcow2"
            make_qcow2(image, "48M", data_mib=2)
            bs_pool = agent.call("/ceph/backupstorage/init", {"uuid": bs_uuid})["poolName"]
            imported = agent.call_async("/ceph/backupstorage/image/download", {
                "url": f"file://{image}", "installPath": f"ceph://{bs_pool}/guest",
                "imageUuid": uuid.uuid4().hex})
            assert imported["success"] and imported["format"] == "qcow2", imported
            assert imported["size"] == 48 << 20
            snap = f"ceph://{bs_pool}/guest@base"
            agent.call("/ceph/primarystorage/snapshot/commit", {"snapshotPath": snap})
            ps = agent.call("/ceph/primarystorage/init", {"uuid": ps_uuid})
            assert ps["fsid"] == imported["fsid"]  # one cluster serves both storages
            root = f"ceph://{ps['rootVolumePoolName']}/vm-root"
            agent.call("/ceph/primarystorage/volume/clone", {"srcPath": snap, "dstPath": root})

            secret = str(uuid.uuid4())
            assert kvm_host.call("/vm/createcephsecret",
                                 {"uuid": secret, "userKey": ps["userKey"]}).json()["success"]
            volume = RbdVolume(cluster, ps["rootVolumePoolName"], "vm-root", 48 << 20)
            cmd = kvm_host.start_cmd(rootVolume=volume.volume_to(secret))
            assert kvm_host.call_async("/vm/start", cmd)["success"]
            vm = cmd["vmInstanceUuid"]
            report = kvm_host.wait_console(vm, lambda r: r.ready and r, "guest boot")
            assert report.disks["vda"] == 48 << 20
            stats = dict(line.split()[1:] for line in kvm_host.virsh("domblkstat", vm, "vda")
                         .splitlines() if line.strip())
            assert int(stats["rd_req"]) > 0, stats
            assert kvm_host.call_async("/vm/destroy", {"uuid": vm})["success"]
            # the clone still shares the imported image's data
            size = agent.call("/ceph/primarystorage/getvolumesize", {"installPath": root})
            assert size["actualSize"] < imported["size"], size
        finally:
            procs.stop(agent.proc)
            handle = cluster.rados()
            try:
                for pool in handle.list_pools():
                    if ps_uuid in pool or bs_uuid in pool:
                        handle.delete_pool(pool)
            finally:
                handle.shutdown()
