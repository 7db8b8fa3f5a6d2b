"""Storage backends: the registry gives each storage type its class; shared mount point
storage refuses every operation naming itself; an unknown type is an error; what the
flows ask of Ceph and local storage (paths, VolumeTOs, row fields, agent commands)."""

import pytest

from coordinator.api import ApiError
from coordinator.clients.endpoint import Call
from coordinator.services import backends
from coordinator.services.backends import (
    CephBackup,
    CephPrimary,
    LocalStorage,
    SftpBackup,
    SharedMountPoint,
)

CEPH_PS = {"uuid": "p1", "name": "ceph-ps", "type": "Ceph", "fsid": "f",
           "config": {"rootVolumePoolName": "root", "dataVolumePoolName": "data",
                      "imageCachePoolName": "cache", "secretUuid": "s", "userKey": "k",
                      "mons": [{"host": "10.0.0.1", "port": 6789}]}}
LOCAL_PS = {"uuid": "p2", "name": "local-ps", "type": "LocalStorage", "url": "/zs/",
            "zone_uuid": "z", "config": {}}
SMP_PS = {"uuid": "p3", "name": "smp-ps", "type": "SharedMountPoint", "url": "/mnt/smp",
          "config": {}}
VOLUME = {"uuid": "v1", "device_id": 1, "install_path": "ceph://root/v1", "size": 1 << 20}


def test_each_type_has_its_class():
    assert type(backends.primary(CEPH_PS)) is CephPrimary
    assert type(backends.primary(LOCAL_PS)) is LocalStorage
    assert type(backends.primary(SMP_PS)) is SharedMountPoint
    assert type(backends.backup({"type": "Ceph"})) is CephBackup
    assert type(backends.backup({"type": "SftpBackupStorage"})) is SftpBackup
    assert backends.shared_types() == ["Ceph"]


def test_an_unknown_type_is_an_error_naming_storage_and_type():
    with pytest.raises(ApiError, match="primary storage x: unknown type NFS"):
        backends.primary({"name": "x", "type": "NFS"})
    with pytest.raises(ApiError, match="backup storage y: unknown type Swift"):
        backends.backup({"name": "y", "type": "Swift"})


@pytest.mark.parametrize("op", [
    lambda b: b.prepare_host(None, {}), lambda b: b.root_volume_path("v"),
    lambda b: b.root_volume_fields({}), lambda b: b.volume_to(VOLUME),
    lambda b: b.delete_command("/p"), lambda b: b.ha_access(),
    lambda b: b.snapshot_command("create", "p@s"), lambda b: b.snapshot(None, "create", "p@s"),
    lambda b: b.agent(None), lambda b: b.call(None, "/x", {}),
    lambda b: b.copy_to_host(None, VOLUME, {}, {}, None, None),
    lambda b: b.create_data_volume(None, VOLUME)])
def test_shared_mount_point_refuses_every_operation_naming_itself(op):
    with pytest.raises(ApiError, match="SharedMountPoint") as err:
        op(backends.primary(SMP_PS))
    assert "not supported by this coordinator yet" in str(err.value)


def test_shared_mount_point_holds_no_image_and_has_no_capability():
    smp = backends.primary(SMP_PS)
    assert smp.image_sources(None, {"uuid": "i"}) == []
    assert not (smp.shared or smp.per_host or smp.snapshots)


def test_ceph_primary():
    ceph = backends.primary(CEPH_PS)
    assert ceph.shared and ceph.snapshots and not ceph.per_host
    assert ceph.root_volume_path("v1") == "ceph://root/v1"
    assert ceph.root_volume_fields({"uuid": "h"}) == {"format": "raw", "host_uuid": ""}
    assert ceph.cache_host({"uuid": "h"}) == ""
    assert ceph.volume_to(VOLUME) == {
        "volumeUuid": "v1", "deviceId": 1, "installPath": "ceph://root/v1",
        "deviceType": "ceph", "format": "raw", "secretUuid": "s",
        "monInfo": [{"hostname": "10.0.0.1", "port": 6789}]}
    assert ceph.delete_command("ceph://root/v1") == (
        Call("/ceph/primarystorage/delete", {"installPath": "ceph://root/v1"}), False)
    assert ceph.snapshot_command("rollback", "ceph://root/v1@s") == Call(
        "/ceph/primarystorage/snapshot/rollback", {"snapshotPath": "ceph://root/v1@s"})
    assert ceph.ha_access() == {"pool": "root", "user_key": "k",
                                "mon_hosts": ["10.0.0.1:6789"]}


def test_local_storage():
    local = backends.primary(LOCAL_PS)
    assert local.per_host and not (local.shared or local.snapshots)
    assert local.root_volume_path("v1") == "/zs/rootvolumes/v1.qcow2"
    assert local.root_volume_fields({"uuid": "h"}) == {"format": "qcow2", "host_uuid": "h"}
    assert local.cache_host({"uuid": "h"}) == "h"
    assert local.volume_to({**VOLUME, "device_id": None, "install_path": "/f"}) == {
        "volumeUuid": "v1", "deviceId": 0, "installPath": "/f", "deviceType": "file",
        "format": "qcow2"}
    assert local.delete_command("/f") == (Call("/localstorage/delete", {"path": "/f"}), True)
    with pytest.raises(ApiError, match="primaryStorageUuid: data volumes on LocalStorage"):
        local.create_data_volume(None, VOLUME)
    with pytest.raises(ApiError, match="snapshots on LocalStorage"):
        local.snapshot_command("create", "/f@s")


def test_backup_storages():
    ceph = backends.backup({"type": "Ceph", "config": {"poolName": "images"}})
    sftp = backends.backup({"type": "SftpBackupStorage", "url": "/bs/"})
    assert ceph.image_path("i") == "ceph://images/i"
    assert sftp.image_path("i") == "/bs/images/i.template"
    assert ceph.delete_command("ceph://images/i") == Call(
        "/ceph/backupstorage/image/delete", {"installPath": "ceph://images/i"})
    # sftpbsagent reads installUrl (installPath too: GC jobs kept before say that)
    assert sftp.delete_command("/bs/images/i.template") == Call(
        "/sftpbackupstorage/delete", {"installUrl": "/bs/images/i.template"})
