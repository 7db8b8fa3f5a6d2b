"""Volume snapshots on Ceph against the session cluster's cephagent: what is checked is
what Ceph holds (the RBD snapshots of the volume's image, the bytes of the image after a
revert), also when the cephagent does not answer (the deletion is a GC job, run once it
answers again) and when a volume with snapshots is deleted. One test snapshots a running
VM's root volume in the two-host cloud."""

from __future__ import annotations

import pytest
import rbd

from coordinator.services import gc
from devcluster import procs
from devcluster.ceph import CephCluster

pytestmark = pytest.mark.integration
BEFORE, AFTER = b"written before the snapshot", b"WRITTEN AFTER THE SNAPSHOT!"


def _image(cluster: CephCluster, install_path: str):
    """(rados client, ioctx, image name) of ``ceph://pool/image``; the caller shuts it."""
    pool, name = install_path.removeprefix("ceph://").split("/")
    client = cluster.rados()
    return client, client.open_ioctx(pool), name


def rbd_snapshots(cluster: CephCluster, install_path: str) -> set[str] | None:
    """The snapshots of the RBD image (asked of Ceph); None if there is no such image."""
    client, ioctx, name = _image(cluster, install_path)
    try:
        with rbd.Image(ioctx, name, read_only=True) as img:
            return {s["name"] for s in img.list_snaps()}
    except rbd.ImageNotFound:
        return None
    finally:
        ioctx.close()
        client.shutdown()


def rbd_io(cluster: CephCluster, install_path: str, data: bytes | None = None) -> bytes:
    """Write ``data`` at offset 0 of the image (if given); the bytes there after."""
    client, ioctx, name = _image(cluster, install_path)
    try:
        with rbd.Image(ioctx, name) as img:
            if data is not None:
                img.write(data, 0)
                img.flush()
            return img.read(0, len(BEFORE))
    finally:
        ioctx.close()
        client.shutdown()


def _unreachable(storages) -> dict:
    """Point the primary storage's agentPort at a closed port; its config to restore."""
    db = storages.api.ctx.db
    config = db.get("primary_storage", storages.ps["uuid"])["config"]
    db.update("primary_storage", storages.ps["uuid"],
              config={**config, "agentPort": procs.free_port()})
    return config


def test_create_revert_and_delete_a_snapshot_as_ceph_sees_it(storages):
    api = storages.api
    vol = storages.volume("data-1")
    rbd_io(storages.cluster, vol["installPath"], BEFORE)

    snap = api("CreateVolumeSnapshot", volumeUuid=vol["uuid"], name="s1",
               description="before")["inventory"]
    assert snap["status"] == "Ready" and snap["volumeUuid"] == vol["uuid"]
    assert snap["installPath"] == f"{vol['installPath']}@{snap['uuid']}"
    assert snap["primaryStorageUuid"] == storages.ps["uuid"] and snap["size"] == 16 << 20
    assert rbd_snapshots(storages.cluster, vol["installPath"]) == {snap["uuid"]}
    again = api("CreateVolumeSnapshot", volumeUuid=vol["uuid"], name="s1",
                resourceUuid=snap["uuid"])["inventory"]  # a repeated call
    assert again["uuid"] == snap["uuid"]
    assert [s["uuid"] for s in api.query("QueryVolumeSnapshot", volumeUuid=vol["uuid"])] \
        == [snap["uuid"]]

    assert rbd_io(storages.cluster, vol["installPath"], AFTER) == AFTER
    api("RevertVolumeFromSnapshot", uuid=snap["uuid"])
    assert rbd_io(storages.cluster, vol["installPath"]) == BEFORE
    api("RevertVolumeFromSnapshot", uuid=snap["uuid"])  # idempotent
    assert rbd_io(storages.cluster, vol["installPath"]) == BEFORE

    api("DeleteVolumeSnapshot", uuid=snap["uuid"])
    assert rbd_snapshots(storages.cluster, vol["installPath"]) == set()
    assert api.query("QueryVolumeSnapshot", uuid=snap["uuid"]) == []
    assert api.post("DeleteVolumeSnapshot", uuid=snap["uuid"])["error"] == \
        f"uuid: no volume snapshot with uuid {snap['uuid']}"


def test_a_snapshot_deleted_while_the_cephagent_is_unreachable_is_a_gc_job(storages):
    api, db = storages.api, storages.api.ctx.db
    vol = storages.volume("data-2")
    snap = api("CreateVolumeSnapshot", volumeUuid=vol["uuid"], name="s")["inventory"]
    config = _unreachable(storages)

    api("DeleteVolumeSnapshot", uuid=snap["uuid"])  # the database changes at once
    assert api.query("QueryVolumeSnapshot", uuid=snap["uuid"]) == []
    [job] = api.query("QueryGCJob", status="Pending")
    assert job["path"] == "/ceph/primarystorage/snapshot/delete"
    assert job["viaPsUuid"] == storages.ps["uuid"]
    assert "no cephagent answers" in job["lastError"]
    assert rbd_snapshots(storages.cluster, vol["installPath"]) == {snap["uuid"]}
    gc.run_all(api.ctx)  # still unreachable: kept
    assert api.query("QueryGCJob", uuid=job["uuid"])[0]["status"] == "Pending"

    # a create that got no answer may have made the snapshot: its removal is kept too,
    # and cancelled when the same snapshot is made again
    again = "3" * 32
    failed = api.post("CreateVolumeSnapshot", volumeUuid=vol["uuid"], name="t",
                      resourceUuid=again)
    assert failed["error"].startswith("ceph-ps: no cephagent answers")
    assert api.query("QueryVolumeSnapshot", uuid=again) == []
    [undo] = api.query("QueryGCJob", name=f"delete volume snapshot {again}")

    db.update("primary_storage", storages.ps["uuid"], config=config)  # it answers again
    api("CreateVolumeSnapshot", volumeUuid=vol["uuid"], name="t", resourceUuid=again)
    assert api.query("QueryGCJob", uuid=undo["uuid"])[0]["status"] == "Cancelled"
    gc.run_all(api.ctx)
    assert api.query("QueryGCJob", uuid=job["uuid"])[0]["status"] == "Done"
    assert rbd_snapshots(storages.cluster, vol["installPath"]) == {again}  # s went, t stays


def test_a_volume_with_snapshots_deleted_under_direct_loses_them_first(storages):
    api = storages.api
    storages.set("volume", "deletionPolicy", "Direct")
    vol = storages.volume("data-3")
    snaps = {api("CreateVolumeSnapshot", volumeUuid=vol["uuid"], name=n)["inventory"]["uuid"]
             for n in ("a", "b")}
    assert rbd_snapshots(storages.cluster, vol["installPath"]) == snaps

    api("DeleteDataVolume", uuid=vol["uuid"])
    assert not storages.rbd_exists(vol["installPath"])
    assert api.query("QueryVolumeSnapshot", volumeUuid=vol["uuid"]) == []

    # unreachable: the snapshots' and the volume's deletions are GC jobs, run in order
    gone = storages.volume("data-4")
    snap = api("CreateVolumeSnapshot", volumeUuid=gone["uuid"], name="c")["inventory"]
    config = _unreachable(storages)
    api("DeleteDataVolume", uuid=gone["uuid"])
    assert api.query("QueryVolumeSnapshot", uuid=snap["uuid"]) == []
    jobs = api.ctx.db.find("gc_job", "status = 'Pending' ORDER BY created, rowid")
    assert [j["path"] for j in jobs] == ["/ceph/primarystorage/snapshot/delete",
                                         "/ceph/primarystorage/delete"]  # as GC runs them
    api.ctx.db.update("primary_storage", storages.ps["uuid"], config=config)
    gc.run_all(api.ctx)
    assert {j["status"] for j in api.query("QueryGCJob")} == {"Done"}
    assert not storages.rbd_exists(gone["installPath"])


def test_errors_name_the_field_and_change_nothing(storages):
    api, db = storages.api, storages.api.ctx.db
    unknown = "0" * 32
    assert api.post("CreateVolumeSnapshot", volumeUuid=unknown, name="s")["error"] == \
        f"volumeUuid: no volume with uuid {unknown}"
    assert api.post("RevertVolumeFromSnapshot", uuid=unknown)["error"] == \
        f"uuid: no volume snapshot with uuid {unknown}"
    client = api.coordinator.app.test_client()
    vol = storages.volume("data-5")
    for body, field in [({"volumeUuid": vol["uuid"], "name": "a\nb"}, "name"),
                        ({"volumeUuid": "../etc", "name": "s"}, "volumeUuid"),
                        ({"volumeUuid": vol["uuid"], "name": "s", "size": 1}, "size")]:
        reply = client.post("/api/CreateVolumeSnapshot", json=body)
        assert reply.status_code == 400 and field in reply.json["error"], reply.json
    assert client.post("/api/CreateVolumeSnapshot", data=b"{not json").status_code == 400

    zone = storages.ps["zoneUuid"]
    local = api("AddLocalPrimaryStorage", name="local", zoneUuid=zone,
                url="/var/lib/zfleet-test")["inventory"]
    db.insert("volume", {"uuid": "1" * 32, "name": "on-local", "type": "Data",
                         "ps_uuid": local["uuid"], "install_path": "/var/lib/x.qcow2",
                         "status": "Ready"})
    assert api.post("CreateVolumeSnapshot", volumeUuid="1" * 32, name="s")["error"] == (
        "volumeUuid: volume on-local is on LocalStorage primary storage local: volume "
        "snapshots there are not built yet (Ceph only)")

    snap = api("CreateVolumeSnapshot", volumeUuid=vol["uuid"], name="s")["inventory"]
    db.insert("vm", {"uuid": "2" * 32, "name": "web", "state": "Running"})
    db.update("volume", vol["uuid"], vm_uuid="2" * 32, device_id=1)
    rbd_io(storages.cluster, vol["installPath"], AFTER)
    assert api.post("RevertVolumeFromSnapshot", uuid=snap["uuid"])["error"] == (
        f"uuid: volume data-5 is attached to VM web ({'2' * 32}), which is Running; stop "
        "the VM (or detach the volume) first")
    assert rbd_io(storages.cluster, vol["installPath"]) == AFTER  # not reverted
    db.update("vm", "2" * 32, state="Stopped")
    api("RevertVolumeFromSnapshot", uuid=snap["uuid"])
    assert rbd_io(storages.cluster, vol["installPath"]) == bytes(len(BEFORE))  # as it was: zeros

    db.update("volume", vol["uuid"], vm_uuid=None, device_id=None)
    api("DeleteDataVolume", uuid=vol["uuid"])  # Delay: Deleted, snapshots kept
    assert api.post("CreateVolumeSnapshot", volumeUuid=vol["uuid"], name="t")["error"] == \
        "volumeUuid: volume data-5 is Deleted, not Ready"
    assert rbd_snapshots(storages.cluster, vol["installPath"]) == {snap["uuid"]}
    api("ExpungeDataVolume", uuid=vol["uuid"])
    assert not storages.rbd_exists(vol["installPath"])
    assert api.query("QueryVolumeSnapshot") == []


def test_a_running_vm_s_root_volume_snapshot_revert_when_stopped_and_destroy(cloud):
    api = cloud.api
    vm = cloud.create_vm("snap-vm")
    [root] = api.query("QueryVolume", uuid=vm["rootVolumeUuid"])
    path, cluster = root["installPath"], cloud.cephagent.cluster
    snap = api("CreateVolumeSnapshot", volumeUuid=root["uuid"], name="live")["inventory"]
    assert rbd_snapshots(cluster, path) == {snap["uuid"]}  # taken while qemu has it open
    assert api.post("RevertVolumeFromSnapshot", uuid=snap["uuid"])["error"] == (
        f"uuid: volume {root['name']} is attached to VM snap-vm ({vm['uuid']}), which is "
        "Running; stop the VM (or detach the volume) first")

    api("StopVmInstance", uuid=vm["uuid"], type="cold")
    boot_sector = rbd_io(cluster, path)
    rbd_io(cluster, path, AFTER)
    api("RevertVolumeFromSnapshot", uuid=snap["uuid"])
    assert rbd_io(cluster, path) == boot_sector

    api("UpdateGlobalConfig", category="vm", name="deletionPolicy", value="Direct")
    api("DestroyVmInstance", uuid=vm["uuid"])
    assert rbd_snapshots(cluster, path) is None  # the image went, its snapshot first
    assert api.query("QueryVolumeSnapshot") == []
