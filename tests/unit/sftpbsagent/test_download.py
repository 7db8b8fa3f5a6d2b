"""sftpbsagent download through its HTTP API: a real HTTP server on loopback serving a
qcow2 made by qemu-img, real qemu-img inspection, real files."""

from __future__ import annotations

import hashlib
import stat
import time
import uuid

MIB = 1 << 20
DOWNLOAD = "/sftpbackupstorage/download"


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_http_download_stores_a_read_only_image_with_its_facts(sftpbs, image_server, image_dir):
    target = sftpbs.root / "images" / "img1" / "image.qcow2"
    image_uuid = uuid.uuid4().hex
    reply = sftpbs.download(f"{image_server.url}/image.qcow2", target, imageUuid=image_uuid)
    assert reply["success"], reply
    source = image_dir / "image.qcow2"
    assert reply["md5Sum"] == md5(source) == md5(target)
    assert (reply["format"], reply["size"]) == ("qcow2", 64 * MIB)
    assert reply["actualSize"] == source.stat().st_size
    assert reply["availableCapacity"] > 0 and reply["totalCapacity"] >= reply["availableCapacity"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert sftpbs.files() == ["images", "images/img1", "images/img1/image.qcow2"]
    # the end is reported to the coordinator and answerable by query
    reports = sftpbs.receiver.wait(commandpath="/progress/report")
    assert any(r.body["progress"] == 100 and r.body["resourceUuid"] == image_uuid
               for r in reports)
    query = sftpbs.call(f"{DOWNLOAD}/progress", {"imageUuid": image_uuid})
    assert (query["progress"], query["bytesDone"]) == (100, source.stat().st_size)

    # repeating it answers the same facts without fetching again
    again = sftpbs.download(f"{image_server.url}/image.qcow2", target)
    assert again == reply | {"availableCapacity": again["availableCapacity"]}
    assert image_server.hits["image.qcow2"] == 1
    # another URL for the same path is refused, the image stays
    other = sftpbs.download(f"{image_server.url}/image.qcow2?chunked=1", target)
    assert not other["success"] and "already holds an image" in other["error"]
    assert md5(target) == md5(source)


def test_chunked_and_file_urls(sftpbs, image_server, image_dir):
    source = image_dir / "image.qcow2"
    chunked = sftpbs.download(f"{image_server.url}/image.qcow2?chunked=1",
                              sftpbs.root / "a.qcow2")
    assert chunked["success"], chunked
    assert chunked["md5Sum"] == md5(source)
    local = sftpbs.download(f"file://{source}", sftpbs.root / "b.qcow2")
    assert local["success"], local
    assert local["md5Sum"] == md5(source)


def test_raw_disk_images_are_accepted(sftpbs, image_server, image_dir):
    raw = image_dir / "disk.raw"
    raw.write_bytes(b"\0" * 510 + b"\x55\xaa" + b"\x01" * (MIB - 512))
    reply = sftpbs.download(f"{image_server.url}/disk.raw", sftpbs.root / "disk.raw")
    assert reply["success"], reply
    assert (reply["format"], reply["size"]) == ("raw", MIB)


def test_failures_are_clear_and_leave_nothing(sftpbs, image_server):
    cases = {
        "missing": (f"{image_server.url}/missing.qcow2", "HTTP 404"),
        "html": (f"{image_server.url}/page.html", "not a disk image"),
        "cut": (f"{image_server.url}/image.qcow2?cut=100000", "broke off"),
        "refused": ("http://127.0.0.1:1/x.qcow2", "connection refused"),
        "file outside roots": ("file:///etc/passwd", "only allowed under"),
    }
    for name, (url, message) in cases.items():
        reply = sftpbs.download(url, sftpbs.root / "new" / "dir" / f"{name}.qcow2")
        assert not reply["success"] and message in reply["error"], (name, reply)
        assert sftpbs.files() == [], (name, sftpbs.files())


def test_cancel_removes_the_partial_file(sftpbs, image_server):
    image_uuid = uuid.uuid4().hex
    taskuuid = uuid.uuid4().hex
    ack = sftpbs.post_async(DOWNLOAD, {
        "url": f"{image_server.url}/image.qcow2?rate={MIB}", "imageUuid": image_uuid,
        "installPath": str(sftpbs.root / "slow" / "image.qcow2")}, taskuuid)
    assert ack.status_code == 200, ack.text
    deadline = time.monotonic() + 10
    while (sftpbs.call(f"{DOWNLOAD}/progress", {"imageUuid": image_uuid}).get("bytesDone") or 0
           ) < MIB:
        assert time.monotonic() < deadline, "the download never got going"
        time.sleep(0.05)
    partial = [f for f in sftpbs.files() if f.endswith(".download")]
    assert len(partial) == 1, sftpbs.files()  # it really was writing
    assert sftpbs.call("/job/cancel", {"taskUuid": taskuuid})["success"]
    [reply] = sftpbs.receiver.wait(taskuuid=taskuuid)
    assert not reply.body["success"] and "cancelled" in reply.body["error"]
    assert sftpbs.files() == []


def test_hostile_input_is_refused_with_400_naming_the_field(sftpbs, image_server):
    url = f"{image_server.url}/image.qcow2"
    bad = [
        ({"url": "ftp://host/x.qcow2", "installPath": str(sftpbs.root / "x")}, "url"),
        ({"url": "gopher://host/x", "installPath": str(sftpbs.root / "x")}, "url"),
        ({"url": url + "\nX-Evil: 1", "installPath": str(sftpbs.root / "x")}, "url"),
        ({"url": url, "installPath": str(sftpbs.root / ".." / "escape")}, "installPath"),
        ({"url": url, "installPath": "relative/path"}, "installPath"),
        ({"url": url, "installPath": str(sftpbs.root / "x\ny")}, "installPath"),
        ({"url": url, "installPath": str(sftpbs.root / "x"), "imageUuid": "a;rm -rf /"},
         "imageUuid"),
        ({"url": 42, "installPath": str(sftpbs.root / "x")}, "url"),
    ]
    for body, field in bad:
        resp = sftpbs.post_async(DOWNLOAD, body, uuid.uuid4().hex)
        assert resp.status_code == 400 and field in resp.json()["error"], (body, resp.text)
    resp = sftpbs.post("/sftpbackupstorage/connect", {"storagePath": "not/absolute"})
    assert resp.status_code == 400 and "storagePath" in resp.text
    assert sftpbs.files() == []


def test_paths_out_of_the_root_are_refused(sftpbs, image_server, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (sftpbs.root / "link").symlink_to(outside)
    url = f"{image_server.url}/image.qcow2"
    for path in (sftpbs.root / "link" / "x.qcow2", tmp_path / "elsewhere.qcow2",
                 sftpbs.root):
        reply = sftpbs.download(url, path)
        assert not reply["success"] and "installPath" in reply["error"], reply
        assert "outside the storage root" in reply["error"], reply
    for endpoint, field in (("/sftpbackupstorage/delete", "installUrl"),
                            ("/sftpbackupstorage/gethash", "path"),
                            ("/sftpbackupstorage/getimagesize", "installPath")):
        reply = sftpbs.call(endpoint, {field: str(sftpbs.root / "link" / "x")})
        assert not reply["success"] and field in reply["error"], reply
    assert list(outside.iterdir()) == [] and sftpbs.files() == ["link"]
