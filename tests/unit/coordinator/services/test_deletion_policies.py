"""Deletion policies of data volumes and images where no agent is needed: refusals that
name the field, volumes without bits, and a local-storage volume whose host does not
answer (its deletion becomes a GC job). Real agents: tests/integration/coordinator/
test_deletion_policies.py."""

from coordinator.db import new_uuid
from coordinator.services import volumedeletion
from devcluster.procs import free_port


def _volume(api, **row) -> str:
    uuid = new_uuid()
    api.ctx.db.insert("volume", {"uuid": uuid, "name": "v", "type": "Data", "format": "raw",
                                 "size": 1 << 20, "status": "NotInstantiated", **row})
    return uuid


def _image(api, *copies: tuple[str, str]) -> str:
    """An image on backup storages ``(bs uuid, status)`` (rows only: no bits to touch)."""
    uuid = new_uuid()
    api.ctx.db.insert("image", {"uuid": uuid, "name": "img", "url": "http://x/i",
                                "format": "qcow2", "status": "Ready"})
    for bs, status in copies:
        api.ctx.db.db["image_bs"].insert({"image_uuid": uuid, "bs_uuid": bs,
                                          "install_path": None, "status": status})
    return uuid


def _backup_storage(api) -> str:
    uuid = new_uuid()
    api.ctx.db.insert("backup_storage", {"uuid": uuid, "name": "bs", "type": "Ceph",
                                         "url": "ceph", "config": {}})
    return uuid


def test_a_volume_that_was_never_instantiated_goes_at_once_whatever_the_policy(coordinator):
    vol = _volume(coordinator)
    assert "inventory" not in coordinator("DeleteDataVolume", uuid=vol)
    assert coordinator.query("QueryVolume", uuid=vol) == []


def test_recover_and_expunge_refuse_a_volume_that_is_not_deleted(coordinator):
    vol = _volume(coordinator)
    recover = coordinator.post("RecoverDataVolume", uuid=vol)
    assert not recover["success"]
    assert recover["error"] == "uuid: volume v is NotInstantiated, not Deleted"
    expunge = coordinator.post("ExpungeDataVolume", uuid=vol)
    assert not expunge["success"] and expunge["error"].startswith("uuid: ")
    assert "delete it first" in expunge["error"]
    missing = coordinator.post("RecoverDataVolume", uuid="a" * 32)
    assert missing["error"] == f"uuid: no volume with uuid {'a' * 32}"
    assert coordinator.query("QueryVolume", uuid=vol)[0]["status"] == "NotInstantiated"


def test_hostile_input_is_a_400_naming_the_field(coordinator):
    client = coordinator.coordinator.app.test_client()
    for api, body, field in [
            ("DeleteDataVolume", {"uuid": "../etc"}, "uuid"),
            ("RecoverDataVolume", {"uuid": "a;rm -rf /"}, "uuid"),
            ("DeleteImage", {"uuid": "a" * 32, "backupStorageUuids": ["x\ny"]},
             "backupStorageUuids.0"),
            ("DeleteImage", {"uuid": "a" * 32, "backupStorageUuids": []},
             "backupStorageUuids"),
            ("RecoverImage", {"imageUuid": "a" * 32, "backupStorageUuids": "b" * 32},
             "backupStorageUuids"),
            ("ExpungeImage", {"uuid": "a" * 32}, "imageUuid")]:
        reply = client.post(f"/api/{api}", json=body)
        assert reply.status_code == 400, (api, reply.json)
        assert reply.json["error"].startswith(field), (api, reply.json)


def test_image_copies_are_named_by_the_field_that_named_them(coordinator):
    ready, deleted, other = (_backup_storage(coordinator) for _ in range(3))
    image = _image(coordinator, (ready, "Ready"), (deleted, "Deleted"))
    not_there = coordinator.post("DeleteImage", uuid=image, backupStorageUuids=[ready, other])
    assert not_there["error"] == f"backupStorageUuids.1: image img is not on backup storage {other}"
    not_deleted = coordinator.post("RecoverImage", imageUuid=image,
                                   backupStorageUuids=[deleted, ready])
    assert not_deleted["error"] == ("backupStorageUuids.1: image img is Ready on backup "
                                    "storage bs, not Deleted")
    assert {r["status"] for r in coordinator.query(
        "QueryImage", uuid=image)[0]["backupStorageRefs"]} == {"Ready", "Deleted"}  # as it was
    nothing = coordinator.post("ExpungeImage", imageUuid=_image(coordinator, (ready, "Ready")))
    assert nothing["error"].startswith("imageUuid: ") and "delete it first" in nothing["error"]
    assert coordinator.post("RecoverImage", imageUuid="b" * 32)["error"] == \
        f"imageUuid: no image with uuid {'b' * 32}"


def test_a_copy_without_bits_is_dropped_and_the_image_with_its_last_copy(coordinator):
    bs = _backup_storage(coordinator)
    image = _image(coordinator, (bs, "Failed"))
    assert "inventory" not in coordinator("DeleteImage", uuid=image)
    assert coordinator.query("QueryImage", uuid=image) == []


def test_a_local_volume_of_an_unreachable_host_is_expunged_and_its_bits_kept_for_gc(
        coordinator):
    api = coordinator
    zone = api("CreateZone", name="z")["inventory"]["uuid"]
    cluster = api("CreateCluster", name="c", zoneUuid=zone)["inventory"]["uuid"]
    ps = api("AddLocalPrimaryStorage", name="local", zoneUuid=zone,
             url="/var/lib/zfleet/local")["inventory"]["uuid"]
    host = new_uuid()  # nothing listens on its agent port: unreachable
    api.ctx.db.insert("host", {"uuid": host, "name": "h1", "zone_uuid": zone,
                               "cluster_uuid": cluster, "management_ip": "127.0.0.1",
                               "agent_port": free_port(), "status": "Disconnected"})
    path = "/var/lib/zfleet/local/datavolumes/v.qcow2"
    vol = _volume(api, ps_uuid=ps, host_uuid=host, install_path=path, status="Ready")
    deleted = api("DeleteDataVolume", uuid=vol)["inventory"]
    assert deleted["status"] == "Deleted"  # Delay: kept, nothing asked of the host yet
    assert api.query("QueryGCJob") == []
    api("UpdateGlobalConfig", category="volume", name="expungePeriod", value="0")
    assert volumedeletion.expunge_due(api.ctx) == 1
    assert api.query("QueryVolume", uuid=vol) == []
    [job] = api.query("QueryGCJob")
    assert (job["hostUuid"], job["path"], job["status"]) == (host, "/localstorage/delete",
                                                             "Pending")
    assert api.ctx.db.get("gc_job", job["uuid"])["body"] == {"path": path}
