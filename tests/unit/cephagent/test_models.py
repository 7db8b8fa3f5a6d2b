"""cephagent's edge: every malformed or hostile field is a 400 naming it, before any
Ceph call (the agent here has no cluster at all), and the settings parse."""

import uuid

import pytest

from agentlib.config import ConfigError, load
from cephagent.app import build
from cephagent.config import CephAgentConfig
from cephagent.models.paths import BadPath, RbdPath

PS, BS = "/ceph/primarystorage", "/ceph/backupstorage"


@pytest.fixture
def client(tmp_path):
    agent = build(CephAgentConfig(ceph_conf=tmp_path / "absent.conf", data_dir=tmp_path))
    try:
        yield agent.app.test_client()
    finally:
        agent.close()


def test_paths_parse_and_print():
    assert RbdPath.parse("ceph://pool/img") == RbdPath("pool", "img")
    assert RbdPath.parse("ceph://p.1/i_2-x@s.3") == RbdPath("p.1", "i_2-x", "s.3")
    assert str(RbdPath("p", "i", "s")) == "ceph://p/i@s"
    assert RbdPath("p", "i", "s").image_path == RbdPath("p", "i")
    for bad in ("ceph://p", "ceph://p/", "ceph:///i", "rbd://p/i", "ceph://p/i@", "ceph://p/a/b",
                "ceph://p/i@s@t", "ceph://p/..", "ceph://p/a..b", "ceph://p/.hidden",
                "ceph://p/i\n", "ceph://p/i j", "ceph://p/" + "x" * 129, "ceph://p/i;ls",
                "ceph://p/$(reboot)"):
        with pytest.raises(BadPath):
            RbdPath.parse(bad)


@pytest.mark.parametrize("path, body, field, message", [
    (f"{PS}/volume/createempty", {"installPath": "ceph://p/i@s", "size": 1},
     "installPath", "not a snapshot"),
    (f"{PS}/volume/createempty", {"installPath": "ceph://p/i", "size": 0},
     "size", "greater than 0"),
    (f"{PS}/volume/createempty", {"installPath": "ceph://p/i", "size": True},
     "size", ""),
    (f"{PS}/volume/createempty", {"installPath": "/etc/passwd", "size": 1},
     "installPath", "not a valid ceph://"),
    (f"{PS}/volume/clone", {"srcPath": "ceph://p/i", "dstPath": "ceph://p/j"},
     "srcPath", "must be a snapshot path"),
    (f"{PS}/volume/clone", {"srcPath": "ceph://p/i@s", "dstPath": "ceph://p/../j"},
     "dstPath", "no '..'"),
    (f"{PS}/snapshot/commit", {"snapshotPath": "ceph://p/i@s\n"}, "snapshotPath", ""),
    (f"{PS}/init", {"imageCachePoolName": "a/b", "uuid": uuid.uuid4().hex},
     "imageCachePoolName", "not a valid pool name"),
    (f"{PS}/init", {"imageCachePoolName": "c"}, "body", "uuid is required"),
    (f"{PS}/init", {"uuid": "x; rm -rf /"}, "uuid", "not a valid uuid"),
    (f"{PS}/checkpool", {"pools": []}, "pools", "at least 1"),
    (f"{PS}/checkpool", {"pools": ["ok", ".."]}, "pools.1", "pool name"),
    (f"{PS}/addpool", {"poolName": "p", "isCreate": "maybe"}, "isCreate", ""),
    (f"{PS}/ping", {"fsid": "not-an-fsid"}, "fsid", ""),
    (f"{PS}/ping", {"monAddr": "1.2.3.4;ls"}, "monAddr", ""),
    (f"{PS}/connect", {"sendCommandUrl": "ftp://x"}, "sendCommandUrl", ""),
    (f"{PS}/deleteimagecache", {"imagePath": "ceph://p/i", "snapshotPath": "ceph://p/i"},
     "snapshotPath", "must be a snapshot path"),
    (f"{BS}/init", {}, "body", "uuid is required"),
    (f"{BS}/image/progress", {"imageUuid": "../../x"}, "imageUuid", "not a valid uuid"),
    (f"{BS}/image/getsize", {}, "installPath", "Field required"),
])
def test_bad_fields_are_400_naming_the_field(client, path, body, field, message):
    reply = client.post(path, json=body)
    assert reply.status_code == 400, reply.json
    error = reply.json["error"]
    assert error.startswith(f"{field}:") and message in error, error


@pytest.mark.parametrize("url, message", [
    ("ftp://host/x.raw", "scheme 'ftp' is not supported"),
    ("http:///x.raw", "no host"),
    ("http://u:secret@h/x\r\nHost: y", "control characters"),
    ("file://remote/etc/passwd", "must name a local path"),
    ("/etc/passwd", "scheme '' is not supported"),
])
def test_download_urls_are_checked_before_accepting(client, url, message):
    reply = client.post(f"{BS}/image/download", json={
        "url": url, "installPath": "ceph://p/i", "imageUuid": uuid.uuid4().hex},
        headers={"taskuuid": "t", "callbackurl": "http://127.0.0.1:1/cb"})
    assert reply.status_code == 400 and reply.json["error"].startswith("url:"), reply.json
    assert message in reply.json["error"] and "secret" not in reply.json["error"]


def test_settings(tmp_path):
    cfg = load(CephAgentConfig, "cephagent", ["--ceph-conf", "/x/ceph.conf", "--ceph-user",
                                              "zfleet", "--ceph-timeout", "4",
                                              "--file-url-roots", "/srv/a,/srv/b"], env={})
    assert (str(cfg.ceph_conf), cfg.ceph_user, cfg.ceph_timeout) == ("/x/ceph.conf", "zfleet", 4)
    assert [str(p) for p in cfg.file_url_roots] == ["/srv/a", "/srv/b"]
    env = load(CephAgentConfig, "cephagent", [], env={"ZFLEET_CEPHAGENT_CEPH_TIMEOUT": "7"})
    assert env.ceph_timeout == 7 and env.file_url_roots == []
    for argv in (["--ceph-user", "client admin"], ["--ceph-timeout", "0"]):
        with pytest.raises(ConfigError):
            load(CephAgentConfig, "cephagent", argv, env={})


def test_a_missing_conf_is_a_clear_failure_not_a_500(client):
    reply = client.post(f"{PS}/connect", json={})
    assert reply.status_code == 200 and not reply.json["success"]
    assert "absent.conf does not exist (--ceph-conf)" in reply.json["error"]


def test_temporary_names_are_reserved(client):
    reply = client.post(f"{PS}/volume/createempty",
                        json={"installPath": "ceph://p/vol.zfleet-tmp", "size": 1})
    assert reply.status_code == 400 and "reserved" in reply.json["error"]
    assert reply.json["error"].startswith("installPath:")
