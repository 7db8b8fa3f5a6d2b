"""sftpbsagent storage commands: connect, ping, sizes, hashes, delete, ssh key, garbage."""

from __future__ import annotations

import hashlib
import uuid

import pytest

P = "/sftpbackupstorage"


@pytest.fixture
def stored(sftpbs, image_server):
    """An image downloaded to ``<root>/images/a/image.qcow2``."""
    path = sftpbs.root / "images" / "a" / "image.qcow2"
    reply = sftpbs.download(f"{image_server.url}/image.qcow2", path)
    assert reply["success"], reply
    return path


def test_connect_and_ping_say_which_storage_and_its_capacity(sftpbs, tmp_path):
    ping = sftpbs.call(f"{P}/ping")
    assert ping["success"] and ping["storagePath"] == str(sftpbs.root)
    assert ping["totalCapacity"] > 0
    storage_uuid = uuid.uuid4().hex
    new_root = tmp_path / "deeper" / "root"
    reply = sftpbs.call(f"{P}/connect", {"storagePath": str(new_root), "uuid": storage_uuid})
    assert reply["success"] and new_root.is_dir()
    assert sftpbs.call(f"{P}/ping")["uuid"] == storage_uuid
    assert sftpbs.call(f"{P}/connect", {"storagePath": str(new_root)})["success"]  # repeat
    (tmp_path / "afile").write_text("x")
    bad = sftpbs.call(f"{P}/connect", {"storagePath": str(tmp_path / "afile")})
    assert not bad["success"] and "storagePath" in bad["error"]
    assert sftpbs.call(f"{P}/ping")["storagePath"] == str(new_root)  # unchanged


def test_size_hash_and_delete(sftpbs, stored):
    size = sftpbs.call(f"{P}/getimagesize", {"installPath": str(stored)})
    assert (size["size"], size["actualSize"]) == (64 << 20, stored.stat().st_size)
    got = sftpbs.call(f"{P}/gethash", {"path": str(stored)})
    assert got["hash"] == hashlib.md5(stored.read_bytes()).hexdigest()
    for _ in range(2):  # a missing image is success
        assert sftpbs.call(f"{P}/delete", {"installUrl": str(stored)})["success"]
    assert sftpbs.files() == []  # its directories went with it
    missing = sftpbs.call(f"{P}/gethash", {"path": str(stored)})
    assert not missing["success"] and "not found" in missing["error"]


def test_ssh_key_is_made_once_and_kept(sftpbs):
    first = sftpbs.call(f"{P}/sshkey")["sshKey"]
    assert first.startswith("ssh-ed25519 ") and "\n" not in first
    assert sftpbs.call(f"{P}/sshkey")["sshKey"] == first
    private = sftpbs.data_dir / "ssh" / "id_ed25519"
    assert private.stat().st_mode & 0o077 == 0


def test_garbage_lists_and_removes_what_no_image_owns(sftpbs, stored):
    leftover = sftpbs.root / "images" / "b" / "orphan.qcow2"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"x")
    stale = sftpbs.root / ".old.qcow2.1234.download"
    stale.write_bytes(b"y")
    listed = sftpbs.call(f"{P}/garbage", {"installPaths": [str(stored)]})
    assert listed["garbage"] == sorted([str(leftover), str(stale)]) and listed["removed"] == []
    assert leftover.exists()
    removed = sftpbs.call(f"{P}/garbage", {"installPaths": [str(stored)], "remove": True})
    assert sorted(removed["removed"]) == sorted([str(leftover), str(stale)])
    assert sftpbs.files() == ["images", "images/a", "images/a/image.qcow2"]
    resp = sftpbs.post(f"{P}/garbage", {"installPaths": ["../etc"]})
    assert resp.status_code == 400 and "installPaths" in resp.text
