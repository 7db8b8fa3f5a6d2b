"""cephagent backup storage: images downloaded from a real HTTP server (and file URLs)
into RBD, raw streamed and qcow2 converted, with progress; failed, cancelled and refused
downloads leave no image behind."""

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import rbd

from agentlib import shell
from tests.fixtures.ceph import rbd_images
from tests.fixtures.sftpbs import ImageServer, make_qcow2

pytestmark = pytest.mark.integration

BS = "/ceph/backupstorage"
MiB = 1 << 20


@pytest.fixture
def served(tmp_path) -> Iterator[ImageServer]:
    """An HTTP server over a directory with a raw image (data, a hole, data) and a qcow2."""
    d = tmp_path / "served"
    d.mkdir()
    with open(d / "disk.raw", "wb") as f:
        f.write(os.urandom(4 * MiB))
        f.write(bytes(8 * MiB))  # two whole zero objects: not written, not allocated
        f.write(os.urandom(MiB + 12345))  # not a multiple of anything
    make_qcow2(d / "disk.qcow2", "32M", data_mib=4)
    server = ImageServer(d)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def bs_pool(cephagent) -> Iterator[str]:
    """A backup storage pool created by init (bak-t-<uuid>), deleted after the test."""
    bs_uuid = uuid.uuid4().hex
    reply = cephagent.call(f"{BS}/init", {"uuid": bs_uuid})
    assert reply["poolName"] == f"bak-t-{bs_uuid}" and reply["created"]
    assert reply["fsid"] == cephagent.cluster.fsid and reply["totalCapacity"] > 0
    again = cephagent.call(f"{BS}/init", {"uuid": bs_uuid})
    assert again["poolName"] == reply["poolName"] and not again["created"]
    try:
        yield reply["poolName"]
    finally:
        handle = cephagent.cluster.rados()
        try:
            handle.delete_pool(reply["poolName"])
        finally:
            handle.shutdown()


def md5_of_image(cluster, pool: str, name: str) -> str:
    handle = cluster.rados()
    try:
        with handle.open_ioctx(pool) as ioctx, rbd.Image(ioctx, name, read_only=True) as img:
            digest = hashlib.md5()
            for off in range(0, img.size(), 4 * MiB):
                digest.update(img.read(off, min(4 * MiB, img.size() - off)))
            return digest.hexdigest()
    finally:
        handle.shutdown()


def download(cephagent, url: str, path: str, image_uuid: str | None = None) -> dict:
    return cephagent.call_async(f"{BS}/image/download", {
        "url": url, "installPath": path, "imageUuid": image_uuid or uuid.uuid4().hex})


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_raw_download_streams_into_rbd_thin_and_repeatable(cephagent, bs_pool, served):
    src = served.directory / "disk.raw"
    path = f"ceph://{bs_pool}/raw-image"
    reply = download(cephagent, f"{served.url}/disk.raw", path)
    assert reply["success"], reply
    assert reply["format"] == "raw" and reply["md5Sum"] == file_md5(src)
    assert reply["size"] == reply["actualSize"] == src.stat().st_size
    assert reply["fsid"] == cephagent.cluster.fsid and reply["availableCapacity"] > 0
    assert md5_of_image(cephagent.cluster, bs_pool, "raw-image") == file_md5(src)
    size = cephagent.call(f"{BS}/image/getsize", {"installPath": path})
    assert size["size"] == src.stat().st_size
    # objects 0 and 3 only (the last one up to the image's end): the zeros were skipped
    assert size["actualSize"] == 5 * MiB + 12345

    # the same download again answers from the image's metadata, without fetching
    hits = served.hits["disk.raw"]
    assert download(cephagent, f"{served.url}/disk.raw", path)["md5Sum"] == reply["md5Sum"]
    assert served.hits["disk.raw"] == hits
    # another URL onto an existing image: refused, the image stays as it was
    other = download(cephagent, f"{served.url}/disk.qcow2", path)
    assert not other["success"] and "already exists" in other["error"]
    assert md5_of_image(cephagent.cluster, bs_pool, "raw-image") == file_md5(src)

    # a body without Content-Length: the image grows as the data comes
    chunked = download(cephagent, f"{served.url}/disk.raw?chunked=1", f"ceph://{bs_pool}/c")
    assert chunked["success"] and chunked["size"] == src.stat().st_size, chunked
    assert md5_of_image(cephagent.cluster, bs_pool, "c") == file_md5(src)

    for _ in range(2):
        cephagent.call(f"{BS}/image/delete", {"installPath": path})
    assert rbd_images(cephagent.cluster, bs_pool) == ["c"]


def test_qcow2_is_converted_to_raw(cephagent, bs_pool, served, tmp_path):
    src = served.directory / "disk.qcow2"
    reply = download(cephagent, f"{served.url}/disk.qcow2", f"ceph://{bs_pool}/q")
    assert reply["success"], reply
    assert reply["format"] == "qcow2" and reply["size"] == 32 * MiB
    assert reply["actualSize"] == src.stat().st_size and reply["md5Sum"] == file_md5(src)
    raw = tmp_path / "expected.raw"
    shell.run(["qemu-img", "convert", "-O", "raw", src, raw])
    assert md5_of_image(cephagent.cluster, bs_pool, "q") == file_md5(raw)
    assert not list((Path(cephagent.proc.log).parent.parent / "data").rglob("download-*"))


def test_qcow2_with_a_backing_file_is_refused(cephagent, bs_pool, served):
    d = served.directory
    shell.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/shadow", "-F", "raw",
               d / "evil.qcow2", "1M"])
    reply = download(cephagent, f"{served.url}/evil.qcow2", f"ceph://{bs_pool}/evil")
    assert not reply["success"] and "backing file" in reply["error"]
    assert rbd_images(cephagent.cluster, bs_pool) == []


def test_failed_downloads_leave_nothing(cephagent, bs_pool, served, tmp_path):
    path = f"ceph://{bs_pool}/img"
    cut = download(cephagent, f"{served.url}/disk.raw?cut={5 * MiB}", path)
    assert not cut["success"] and "disk.raw" in cut["error"], cut
    missing = download(cephagent, f"{served.url}/nothing.raw", path)
    assert not missing["success"] and "HTTP 404" in missing["error"]
    refused = download(cephagent, "http://user:secret@127.0.0.1:1/x.raw", path)
    assert not refused["success"] and "connection refused" in refused["error"]
    assert "secret" not in refused["error"]
    outside = tmp_path / "outside.raw"
    outside.write_bytes(b"x" * 100)
    reply = download(cephagent, f"file://{outside}", path)
    assert not reply["success"] and "only allowed under" in reply["error"]
    assert rbd_images(cephagent.cluster, bs_pool) == []  # no image, no .zfleet-tmp either

    inside = cephagent.files / "ok.raw"
    inside.write_bytes(b"y" * MiB)
    reply = download(cephagent, f"file://{inside}", path)
    assert reply["success"] and reply["size"] == MiB, reply


def test_progress_reports_and_cancel(cephagent, bs_pool, served):
    cephagent.call(f"{BS}/connect", {"sendCommandUrl": cephagent.receiver.url})
    image_uuid = uuid.uuid4().hex
    total = served.directory.joinpath("disk.raw").stat().st_size
    task = cephagent.start(f"{BS}/image/download", {
        "url": f"{served.url}/disk.raw?rate={4 * MiB}", "installPath": f"ceph://{bs_pool}/p",
        "imageUuid": image_uuid})

    def progress() -> dict:
        return cephagent.call(f"{BS}/image/progress", {"imageUuid": image_uuid})

    deadline = time.monotonic() + 10
    while progress()["bytesDone"] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    mid = progress()
    assert 0 < mid["bytesDone"] < total and mid["bytesTotal"] == total
    assert 0 <= mid["progress"] < 100 and mid["stage"] == "download"
    assert cephagent.result(task)["success"]
    assert progress()["progress"] == 100
    reports = [r.body for r in cephagent.receiver.received
               if r.headers.get("commandpath") == "/progress/report"
               and r.body.get("resourceUuid") == image_uuid]
    assert reports and reports[-1]["progress"] == 100 and reports[-1]["taskUuid"] == task

    # cancelled half way: the callback says so and no image (nor temporary one) remains
    task = cephagent.start(f"{BS}/image/download", {
        "url": f"{served.url}/disk.raw?rate={2 * MiB}", "installPath": f"ceph://{bs_pool}/x",
        "imageUuid": uuid.uuid4().hex})
    time.sleep(1.5)
    assert cephagent.call("/job/cancel", {"taskUuid": task})["success"]
    reply = cephagent.result(task)
    assert not reply["success"] and "cancelled" in reply["error"]
    assert rbd_images(cephagent.cluster, bs_pool) == ["p"]

    error = cephagent.fail(f"{BS}/image/progress", {"imageUuid": uuid.uuid4().hex})
    assert error.startswith("imageUuid: no download")


def test_download_input_is_checked(cephagent, bs_pool):
    for field, body in {
        "url": {"url": "ftp://host/x", "installPath": f"ceph://{bs_pool}/a"},
        "installPath": {"url": "http://h/x", "installPath": f"ceph://{bs_pool}/a@snap"},
        "imageUuid": {"url": "http://h/x", "installPath": f"ceph://{bs_pool}/a",
                      "imageUuid": "../x"},
    }.items():
        body.setdefault("imageUuid", uuid.uuid4().hex)
        reply = cephagent.post(f"{BS}/image/download", body, headers={
            "taskuuid": uuid.uuid4().hex, "callbackurl": cephagent.receiver.url})
        assert reply.status_code == 400 and reply.json()["error"].startswith(field), reply.text
    reply = cephagent.post(f"{BS}/image/download",
                           {"url": "http://h/x\nHost: evil", "installPath": f"ceph://{bs_pool}/a",
                            "imageUuid": uuid.uuid4().hex},
                           headers={"taskuuid": "t1", "callbackurl": cephagent.receiver.url})
    assert reply.status_code == 400 and "control characters" in reply.json()["error"]
    error = cephagent.fail(f"{BS}/init", {"poolName": "no-such-pool"})
    assert error == "poolName: pool no-such-pool does not exist"


def test_init_sweeps_what_a_crash_left_but_not_running_downloads(cephagent, bs_pool, served):
    handle = cephagent.cluster.rados()
    try:
        with handle.open_ioctx(bs_pool) as ioctx:  # as an agent killed mid-download leaves it
            rbd.RBD().create(ioctx, "old.zfleet-tmp", MiB)
    finally:
        handle.shutdown()
    task = cephagent.start(f"{BS}/image/download", {
        "url": f"{served.url}/disk.raw?rate={6 * MiB}", "installPath": f"ceph://{bs_pool}/new",
        "imageUuid": uuid.uuid4().hex})
    deadline = time.monotonic() + 10
    while "new.zfleet-tmp" not in rbd_images(cephagent.cluster, bs_pool):
        assert time.monotonic() < deadline, "the download did not start"
        time.sleep(0.05)
    cephagent.call(f"{BS}/init", {"poolName": bs_pool})
    assert rbd_images(cephagent.cluster, bs_pool) == ["new.zfleet-tmp"]  # running: kept
    assert cephagent.result(task)["success"]
    assert rbd_images(cephagent.cluster, bs_pool) == ["new"]
