"""Deletion policies of data volumes and images (ZStack 1.0) against real storage: a
coordinator served on loopback drives the session cluster's cephagent (Ceph primary and
backup storage) and an sftpbsagent (files under a directory). What is checked is what
Ceph and the disk hold: kept after a Delay or Never delete, usable again after recover,
gone after expunge, after the expunger's period, and at once under Direct. One test
uses the two-host cloud to attach a recovered volume and boot a VM of a recovered image.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coordinator.services import gc, imagedeletion, volumedeletion
from devcluster import procs

pytestmark = pytest.mark.integration


# -- data volumes ------------------------------------------------------------------------
def test_a_delay_deleted_volume_keeps_its_rbd_image_until_recovered_or_expunged(storages):
    api = storages.api
    vol = storages.volume("data-1")
    path = vol["installPath"]
    assert storages.rbd_exists(path)

    deleted = api("DeleteDataVolume", uuid=vol["uuid"])["inventory"]  # Delay, the default
    assert deleted["status"] == "Deleted"
    assert api.query("QueryVolume", status="Deleted")[0]["uuid"] == vol["uuid"]
    assert storages.rbd_exists(path)
    again = api("DeleteDataVolume", uuid=vol["uuid"])["inventory"]  # idempotent
    assert again["status"] == "Deleted" and storages.rbd_exists(path)

    assert api("RecoverDataVolume", uuid=vol["uuid"])["inventory"]["status"] == "Ready"
    assert storages.rbd_exists(path)
    twice = api.post("RecoverDataVolume", uuid=vol["uuid"])
    assert twice["error"] == "uuid: volume data-1 is Ready, not Deleted"
    early = api.post("ExpungeDataVolume", uuid=vol["uuid"])
    assert early["error"] == "uuid: volume data-1 is Ready, not Deleted; delete it first"
    assert storages.rbd_exists(path)

    api("DeleteDataVolume", uuid=vol["uuid"])
    api("ExpungeDataVolume", uuid=vol["uuid"])
    assert not storages.rbd_exists(path)
    assert api.query("QueryVolume", uuid=vol["uuid"]) == []


def test_volume_policies_never_direct_and_the_expunger_period(storages):
    api = storages.api
    storages.set("volume", "deletionPolicy", "Never")
    storages.set("volume", "expungePeriod", "0")
    kept = storages.volume("kept")
    api("DeleteDataVolume", uuid=kept["uuid"])
    assert volumedeletion.expunge_due(api.ctx) == 0  # Never: the expunger leaves it
    assert storages.rbd_exists(kept["installPath"])

    storages.set("volume", "deletionPolicy", "Delay")
    assert volumedeletion.expunge_due(api.ctx) == 1
    assert not storages.rbd_exists(kept["installPath"])
    storages.set("volume", "expungePeriod", "1")
    later = storages.volume("later")
    api("DeleteDataVolume", uuid=later["uuid"])
    assert volumedeletion.expunge_due(api.ctx) == 0  # its period is not over yet
    assert storages.rbd_exists(later["installPath"])
    time.sleep(1.1)
    assert volumedeletion.expunge_due(api.ctx) == 1
    assert not storages.rbd_exists(later["installPath"])
    assert api.query("QueryVolume") == []

    storages.set("volume", "deletionPolicy", "Direct")
    direct = storages.volume("direct")
    assert "inventory" not in api("DeleteDataVolume", uuid=direct["uuid"])
    assert not storages.rbd_exists(direct["installPath"])
    assert api.query("QueryVolume") == []


# -- images ------------------------------------------------------------------------------
def test_an_image_is_deleted_recovered_and_expunged_per_backup_storage(storages):
    api, ceph_bs, sftp_bs = storages.api, storages.ceph_bs["uuid"], storages.sftp_bs["uuid"]
    image = storages.image("guest", storages.ceph_bs, storages.sftp_bs)
    copies = storages.copies(image["uuid"])
    rbd_path, file_path = copies[ceph_bs][1], Path(copies[sftp_bs][1])
    assert storages.rbd_exists(rbd_path) and file_path.is_file()

    one = api("DeleteImage", uuid=image["uuid"], backupStorageUuids=[sftp_bs])["inventory"]
    assert one["status"] == "Ready"  # still Ready on the Ceph backup storage
    assert storages.copies(image["uuid"]) == {ceph_bs: ("Ready", rbd_path),
                                              sftp_bs: ("Deleted", str(file_path))}
    all_ = api("DeleteImage", uuid=image["uuid"])["inventory"]
    assert all_["status"] == "Deleted"
    assert api.query("QueryImage", status="Deleted")[0]["uuid"] == image["uuid"]
    assert storages.rbd_exists(rbd_path) and file_path.is_file()  # bits kept
    offering = api("CreateInstanceOffering", name="o", cpuNum=1,
                   memorySize=64 << 20)["inventory"]["uuid"]
    refused = api.post("CreateVmInstance", name="vm", imageUuid=image["uuid"],
                       instanceOfferingUuid=offering, l3NetworkUuids=["c" * 32])
    assert refused["error"] == "imageUuid: image guest is Deleted, not Ready"

    back = api("RecoverImage", imageUuid=image["uuid"], backupStorageUuids=[ceph_bs])
    assert back["inventory"]["status"] == "Ready"
    assert storages.copies(image["uuid"])[sftp_bs][0] == "Deleted"
    again = api.post("RecoverImage", imageUuid=image["uuid"], backupStorageUuids=[ceph_bs])
    assert again["error"] == ("backupStorageUuids.0: image guest is Ready on backup storage "
                              "ceph-bs, not Deleted")

    left = api("ExpungeImage", imageUuid=image["uuid"])["inventory"]  # the Deleted copies
    assert [r["backupStorageUuid"] for r in left["backupStorageRefs"]] == [ceph_bs]
    assert not file_path.exists() and storages.rbd_exists(rbd_path)
    nothing = api.post("ExpungeImage", imageUuid=image["uuid"])
    assert nothing["error"] == "imageUuid: image guest has no Deleted copy; delete it first"

    storages.set("image", "deletionPolicy", "Never")
    storages.set("image", "expungePeriod", "0")
    api("DeleteImage", uuid=image["uuid"])
    assert imagedeletion.expunge_due(api.ctx) == 0  # Never: the expunger leaves it
    assert storages.rbd_exists(rbd_path)
    storages.set("image", "deletionPolicy", "Delay")
    assert imagedeletion.expunge_due(api.ctx) == 1
    assert not storages.rbd_exists(rbd_path)
    assert api.query("QueryImage") == []  # gone with its last copy


def test_direct_deletes_an_images_bits_at_once(storages):
    api = storages.api
    storages.set("image", "deletionPolicy", "Direct")
    image = storages.image("direct", storages.ceph_bs, storages.sftp_bs)
    copies = storages.copies(image["uuid"])
    rbd_path = copies[storages.ceph_bs["uuid"]][1]
    file_path = Path(copies[storages.sftp_bs["uuid"]][1])
    left = api("DeleteImage", uuid=image["uuid"],
               backupStorageUuids=[storages.sftp_bs["uuid"]])["inventory"]
    assert left["status"] == "Ready" and not file_path.exists()
    assert storages.rbd_exists(rbd_path)
    assert "inventory" not in api("DeleteImage", uuid=image["uuid"])
    assert not storages.rbd_exists(rbd_path)
    assert api.query("QueryImage") == []


# -- with VMs ------------------------------------------------------------------------------
def test_a_recovered_volume_is_attached_and_a_recovered_image_makes_a_vm(cloud):
    api = cloud.api
    api("DeleteImage", uuid=cloud.image)
    refused = api.post("CreateVmInstance", name="vm", imageUuid=cloud.image,
                       instanceOfferingUuid=cloud.offering, l3NetworkUuids=[cloud.l3])
    assert refused["error"].startswith("imageUuid: ") and "Deleted" in refused["error"]
    api("RecoverImage", imageUuid=cloud.image)
    vm = cloud.create_vm("from-recovered")
    assert vm["state"] == "Running"

    offering = api("CreateDiskOffering", name="d", diskSize=32 << 20)["inventory"]
    vol = api("CreateDataVolume", name="data", diskOfferingUuid=offering["uuid"],
              primaryStorageUuid=cloud.primary_storage)["inventory"]
    api("DeleteDataVolume", uuid=vol["uuid"])
    deleted = api.post("AttachDataVolumeToVm", vmInstanceUuid=vm["uuid"],
                       volumeUuid=vol["uuid"])
    assert deleted["error"] == ("volumeUuid: volume data is Deleted; recover it first "
                                "(RecoverDataVolume)")
    api("RecoverDataVolume", uuid=vol["uuid"])
    api("AttachDataVolumeToVm", vmInstanceUuid=vm["uuid"], volumeUuid=vol["uuid"])
    disks = cloud.host_of(vm["uuid"]).run(["virsh", "-c", "qemu:///system", "domblklist",
                                           vm["uuid"]]).stdout
    pool_image = vol["installPath"].removeprefix("ceph://")
    assert any(line.split()[:2] == ["vdb", pool_image] for line in disks.splitlines())


# -- storages whose agents do not answer -------------------------------------------------
def test_bits_on_an_unreachable_storage_become_gc_jobs_run_when_it_answers(storages):
    api, db = storages.api, storages.api.ctx.db
    storages.set("volume", "deletionPolicy", "Direct")
    storages.set("image", "deletionPolicy", "Direct")
    vol = storages.volume("orphan")
    image = storages.image("orphan", storages.sftp_bs)
    file_path = Path(storages.copies(image["uuid"])[storages.sftp_bs["uuid"]][1])
    ps, bs = db.get("primary_storage", storages.ps["uuid"]), storages.sftp_bs["uuid"]
    db.update("primary_storage", ps["uuid"], config={**ps["config"],
                                                     "agentPort": procs.free_port()})
    db.update("backup_storage", bs, agent_port=procs.free_port())

    api("DeleteDataVolume", uuid=vol["uuid"])  # the database changes at once
    api("DeleteImage", uuid=image["uuid"])
    assert api.query("QueryVolume", uuid=vol["uuid"]) == []
    assert api.query("QueryImage", uuid=image["uuid"]) == []
    jobs = api.query("QueryGCJob", status="Pending")
    assert sorted(j["path"] for j in jobs) == ["/ceph/primarystorage/delete",
                                               "/sftpbackupstorage/delete"]
    assert storages.rbd_exists(vol["installPath"]) and file_path.is_file()
    gc.run_all(api.ctx)  # still unreachable: kept, attempts counted
    assert {j["status"] for j in api.query("QueryGCJob")} == {"Pending"}
    assert all(j["attempts"] == 1 for j in api.query("QueryGCJob"))

    db.update("primary_storage", ps["uuid"], config=ps["config"])  # they answer again
    db.update("backup_storage", bs, agent_port=storages.sftp_bs["agentPort"])
    gc.run_all(api.ctx)
    assert {j["status"] for j in api.query("QueryGCJob")} == {"Done"}
    assert not storages.rbd_exists(vol["installPath"]) and not file_path.exists()
