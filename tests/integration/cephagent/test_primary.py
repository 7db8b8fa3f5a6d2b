"""cephagent primary storage against a real cluster: init, the copy-on-write volume life
cycle (import -> cache snapshot -> protect -> 20 clones -> flatten -> delete in order),
snapshots, and the error paths that must leave state as it was."""

import uuid

import pytest
import rbd

from tests.fixtures.ceph import rbd_images

pytestmark = pytest.mark.integration

PS = "/ceph/primarystorage"
MiB = 1 << 20


def test_init_creates_unnamed_pools_checks_named_ones_and_repeats(cephagent):
    ps_uuid = uuid.uuid4().hex
    handle = cephagent.cluster.rados()
    try:
        handle.create_pool(named := f"ops-{ps_uuid[:8]}")
        body = {"uuid": ps_uuid, "imageCachePoolName": named}
        first = cephagent.call(f"{PS}/init", body)
        assert first["fsid"] == cephagent.cluster.fsid
        assert first["totalCapacity"] > 0 and 0 < first["availableCapacity"] <= first[
            "totalCapacity"]
        assert first["imageCachePoolName"] == named
        assert first["rootVolumePoolName"] == f"pri-v-r-{ps_uuid}"
        assert sorted(first["createdPools"]) == [f"pri-v-d-{ps_uuid}", f"pri-v-r-{ps_uuid}"]
        assert first["userKey"] and first["mons"][0]["name"] == "a"
        for pool in (f"pri-v-r-{ps_uuid}", f"pri-v-d-{ps_uuid}"):
            with handle.open_ioctx(pool) as ioctx:  # pool_init'd: the rbd application is on
                assert "rbd" in ioctx.application_list()
        again = cephagent.call(f"{PS}/init", body)
        assert again["createdPools"] == [] and again["rootVolumePoolName"] == first[
            "rootVolumePoolName"]

        # a named pool that does not exist: the error names it, and nothing is created
        other = uuid.uuid4().hex
        error = cephagent.fail(f"{PS}/init", {"uuid": other, "dataVolumePoolName": "nope",
                                              "rootVolumePoolName": named})
        assert "dataVolumePoolName: pool nope does not exist" in error
        assert not [p for p in handle.list_pools() if other in p]
    finally:
        for pool in handle.list_pools():
            if ps_uuid in pool:
                handle.delete_pool(pool)
        handle.shutdown()


def test_copy_on_write_life_cycle(cephagent, ceph_pool):
    base, snap = f"ceph://{ceph_pool}/image", f"ceph://{ceph_pool}/image@cache"
    cephagent.call(f"{PS}/volume/createempty", {"installPath": base, "size": 64 * MiB})
    handle = cephagent.cluster.rados()
    try:
        with handle.open_ioctx(ceph_pool) as ioctx, rbd.Image(ioctx, "image") as img:
            img.write(b"zfleet!" * (4 * MiB // 7), 0)  # ~4 MiB of real data: one object
            img.write(b"tail", 60 * MiB)
    finally:
        handle.shutdown()
    # clone before protecting: refused, naming the snapshot
    cephagent.call(f"{PS}/snapshot/create", {"snapshotPath": snap})
    error = cephagent.fail(f"{PS}/volume/clone", {"srcPath": snap,
                                                 "dstPath": f"ceph://{ceph_pool}/v0"})
    assert "is not protected" in error and snap in error
    for _ in range(2):  # commit = snapshot + protect, repeatable
        assert cephagent.call(f"{PS}/snapshot/commit", {"snapshotPath": snap})["size"] == (
            64 * MiB)

    clones = [f"ceph://{ceph_pool}/vol-{i}" for i in range(20)]
    for dst in clones:
        reply = cephagent.call(f"{PS}/volume/clone", {"srcPath": snap, "dstPath": dst})
        assert reply["fsid"] == cephagent.cluster.fsid and reply["availableCapacity"] > 0
    cephagent.call(f"{PS}/volume/clone", {"srcPath": snap, "dstPath": clones[0]})  # again: ok
    # the clones share the parent's data: each allocates nothing of its own (rbd du)
    parent = cephagent.call(f"{PS}/getvolumesize", {"installPath": base})
    assert parent["size"] == 64 * MiB and parent["actualSize"] == 8 * MiB  # two objects
    for dst in clones:
        size = cephagent.call(f"{PS}/getvolumesize", {"installPath": dst})
        assert size["size"] == 64 * MiB and size["actualSize"] == 0, (dst, size)

    # a clone of the snapshot exists under another name: cloning onto it is refused
    cephagent.call(f"{PS}/volume/createempty", {"installPath": f"ceph://{ceph_pool}/plain",
                                               "size": MiB})
    error = cephagent.fail(f"{PS}/volume/clone", {"srcPath": snap,
                                                 "dstPath": f"ceph://{ceph_pool}/plain"})
    assert "already exists and is not a clone of" in error

    # the parent cannot go while clones exist, and stays
    error = cephagent.fail(f"{PS}/delete", {"installPath": base})
    assert "has snapshots (cache)" in error
    error = cephagent.fail(f"{PS}/snapshot/unprotect", {"snapshotPath": snap})
    assert "has clones" in error and clones[0] in error
    error = cephagent.fail(f"{PS}/deleteimagecache", {"imagePath": base, "snapshotPath": snap})
    assert "have clones" in error
    assert "image" in rbd_images(cephagent.cluster, ceph_pool)

    # flatten one: it now owns its data (with progress) and no longer needs the parent
    reply = cephagent.call_async(f"{PS}/volume/flatten", {"installPath": clones[0]})
    assert reply["success"], reply
    flat = cephagent.call(f"{PS}/getvolumesize", {"installPath": clones[0]})
    assert flat["actualSize"] == 8 * MiB
    assert cephagent.call_async(f"{PS}/volume/flatten", {"installPath": clones[0]})["success"]

    # delete in the right order: clones, then unprotect + remove the cache snapshot/image
    for dst in clones[1:]:
        cephagent.call(f"{PS}/delete", {"installPath": dst})
    cephagent.call(f"{PS}/delete", {"installPath": clones[1]})  # gone already: success
    for _ in range(2):
        cephagent.call(f"{PS}/deleteimagecache", {"imagePath": base, "snapshotPath": snap})
    assert rbd_images(cephagent.cluster, ceph_pool) == ["plain", "vol-0"]


def test_snapshots_rollback_resize_copy(cephagent, ceph_pool):
    vol, snap = f"ceph://{ceph_pool}/vol", f"ceph://{ceph_pool}/vol@s1"
    cephagent.call(f"{PS}/volume/createempty", {"installPath": vol, "size": 8 * MiB})
    cephagent.call(f"{PS}/volume/createempty", {"installPath": vol, "size": 8 * MiB})  # same
    error = cephagent.fail(f"{PS}/volume/createempty", {"installPath": vol, "size": 9 * MiB})
    assert "already exists with size 8388608, not 9437184" in error

    def write(data: bytes) -> None:
        handle = cephagent.cluster.rados()
        try:
            with handle.open_ioctx(ceph_pool) as ioctx, rbd.Image(ioctx, "vol") as img:
                img.write(data, 0)
        finally:
            handle.shutdown()

    def read() -> bytes:
        handle = cephagent.cluster.rados()
        try:
            with handle.open_ioctx(ceph_pool) as ioctx, rbd.Image(ioctx, "vol") as img:
                return img.read(0, 5)
        finally:
            handle.shutdown()

    write(b"first")
    for _ in range(2):
        cephagent.call(f"{PS}/snapshot/create", {"snapshotPath": snap})
    write(b"later")
    assert cephagent.call(f"{PS}/snapshot/rollback", {"snapshotPath": snap})["size"] == 8 * MiB
    assert read() == b"first"
    error = cephagent.fail(f"{PS}/snapshot/rollback",
                           {"snapshotPath": f"ceph://{ceph_pool}/vol@missing"})
    assert "does not exist" in error

    # a full copy of the snapshot is independent of it
    assert cephagent.call_async(f"{PS}/volume/cp", {"srcPath": snap,
                                                    "dstPath": f"ceph://{ceph_pool}/copy"}
                                )["success"]
    copy = cephagent.call(f"{PS}/getvolumesize", {"installPath": f"ceph://{ceph_pool}/copy"})
    assert copy["size"] == 8 * MiB and copy["actualSize"] > 0

    reply = cephagent.call(f"{PS}/volume/resize", {"installPath": vol, "size": 16 * MiB})
    assert reply["size"] == 16 * MiB
    error = cephagent.fail(f"{PS}/volume/resize", {"installPath": vol, "size": MiB})
    assert "shrinking is refused" in error

    cephagent.call(f"{PS}/snapshot/protect", {"snapshotPath": snap})
    error = cephagent.fail(f"{PS}/snapshot/delete", {"snapshotPath": snap})
    assert "protected" in error
    for _ in range(2):
        cephagent.call(f"{PS}/snapshot/unprotect", {"snapshotPath": snap})
    for _ in range(2):
        cephagent.call(f"{PS}/snapshot/delete", {"snapshotPath": snap})
    cephagent.call(f"{PS}/delete", {"installPath": vol})
    assert rbd_images(cephagent.cluster, ceph_pool) == ["copy"]


def test_missing_things_are_named(cephagent, ceph_pool):
    error = cephagent.fail(f"{PS}/getvolumesize", {"installPath": "ceph://no-such-pool/x"})
    assert error == "pool no-such-pool does not exist"
    error = cephagent.fail(f"{PS}/getvolumesize", {"installPath": f"ceph://{ceph_pool}/x"})
    assert error == f"ceph://{ceph_pool}/x: image does not exist"
    error = cephagent.fail(f"{PS}/volume/clone", {"srcPath": f"ceph://{ceph_pool}/x@s",
                                                 "dstPath": f"ceph://{ceph_pool}/y"})
    assert "does not exist" in error
    error = cephagent.fail(f"{PS}/checkpool", {"pools": [ceph_pool, "gone-1", "gone-2"]})
    assert "gone-1, gone-2" in error and ceph_pool not in error.split("exist")[0]
    assert cephagent.call(f"{PS}/checkpool", {"pools": [ceph_pool]})["success"]
    error = cephagent.fail(f"{PS}/addpool", {"poolName": "gone-3"})
    assert error == "poolName: pool gone-3 does not exist"


def test_hostile_input_is_a_400_naming_the_field(cephagent, ceph_pool):
    before = rbd_images(cephagent.cluster, ceph_pool)
    cases = {
        "installPath": {"installPath": f"ceph://{ceph_pool}/a;rm -rf /", "size": MiB},
        "size": {"installPath": f"ceph://{ceph_pool}/a", "size": "big"},
    }
    for field, body in cases.items():
        reply = cephagent.post(f"{PS}/volume/createempty", body)
        assert reply.status_code == 400 and reply.json()["error"].startswith(field), reply.text
    for bad in (f"ceph://{ceph_pool}/../x", f"ceph://{ceph_pool}/a\nb", f"ceph://{ceph_pool}",
                f"ceph://{ceph_pool}/a/b", f"ceph://{ceph_pool}/a@s"):
        reply = cephagent.post(f"{PS}/delete", {"installPath": bad})
        assert reply.status_code == 400 and reply.json()["error"].startswith("installPath")
    reply = cephagent.post(f"{PS}/snapshot/create",
                           {"snapshotPath": f"ceph://{ceph_pool}/a"})  # no @snap
    assert reply.status_code == 400 and "must be a snapshot path" in reply.json()["error"]
    reply = cephagent.post(f"{PS}/volume/clone", data=b"{not json",
                           headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["error"]
    assert rbd_images(cephagent.cluster, ceph_pool) == before


def test_ping_tells_the_cluster_and_mon_apart(cephagent, ceph_pool):
    fsid = cephagent.cluster.fsid
    mon = cephagent.call(f"{PS}/connect", {})["mons"][0]
    reply = cephagent.call(f"{PS}/ping", {"fsid": fsid, "monAddr": mon["addr"],
                                          "poolName": ceph_pool})
    assert reply["fsid"] == fsid
    assert "zfleet-cephagent-ping" in _objects(cephagent.cluster, ceph_pool)
    error = cephagent.fail(f"{PS}/ping", {"fsid": str(uuid.uuid4())})
    assert "different cluster" in error
    error = cephagent.fail(f"{PS}/ping", {"monAddr": "127.0.0.9:6789"})
    assert "not in the monmap" in error
    facts = cephagent.call(f"{PS}/facts", {})
    assert facts["cephVersion"].startswith("ceph version") and facts["mons"] == [mon]


def _objects(cluster, pool: str) -> list[str]:
    handle = cluster.rados()
    try:
        with handle.open_ioctx(pool) as ioctx:
            return [o.key for o in ioctx.list_objects()]
    finally:
        handle.shutdown()
