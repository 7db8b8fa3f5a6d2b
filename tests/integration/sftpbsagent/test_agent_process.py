"""The sftpbsagent as a real process in a simulated host with sshd: http and sftp
downloads, the ssh key it manages, and its command line."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from agentlib import shell
from agentlib.receiver import CallbackReceiver
from devcluster.sshd import authorize

pytestmark = pytest.mark.integration

DOWNLOAD = "/sftpbackupstorage/download"


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_http_and_sftp_downloads(sftpbs_host, image_dir, host_network):
    bs = sftpbs_host
    source = image_dir / "image.qcow2"
    ip = host_network.root_ip.split("/")[0]
    with CallbackReceiver(host=ip) as receiver:
        reply = bs.call_async(DOWNLOAD, {"url": f"{bs.images.url}/image.qcow2",
                                         "installPath": str(bs.root / "http.qcow2")}, receiver)
        assert reply["success"] and reply["md5Sum"] == md5(source), reply

        sftp_url = f"sftp://root@{bs.host.mgmt_address}{source}"
        refused = bs.call_async(DOWNLOAD, {"url": sftp_url,
                                           "installPath": str(bs.root / "s.qcow2")}, receiver)
        assert not refused["success"] and "Permission denied" in refused["error"], refused
        assert sorted(p.name for p in bs.root.iterdir()) == ["http.qcow2"]

        authorize(bs.host, bs.call("/sftpbackupstorage/sshkey")["sshKey"])
        reply = bs.call_async(DOWNLOAD, {"url": sftp_url,
                                         "installPath": str(bs.root / "s.qcow2")}, receiver)
        assert reply["success"] and reply["md5Sum"] == md5(source), reply
        assert md5(bs.root / "s.qcow2") == md5(source)

        missing = bs.call_async(DOWNLOAD, {"url": sftp_url + ".nope",
                                           "installPath": str(bs.root / "m.qcow2")}, receiver)
        assert not missing["success"] and "No such file" in missing["error"], missing
        for url, message in ((f"sftp://-oProxyCommand=x@{bs.host.mgmt_address}/x",
                              "not a valid login name"),
                             ("sftp://root@-oProxyCommand=x/x", "not a valid host"),
                             ("sftp://root:pw@h/x", "passwords are not used")):
            reply = bs.call_async(DOWNLOAD, {"url": url,
                                             "installPath": str(bs.root / "x.qcow2")}, receiver)
            assert not reply["success"] and message in reply["error"], reply
    assert sorted(p.name for p in bs.root.iterdir()) == ["http.qcow2", "s.qcow2"]


def test_a_restarted_agent_serves_the_same_root(sftpbs_host, host_network):
    bs = sftpbs_host
    before = bs.call("/sftpbackupstorage/ping")
    key = bs.call("/sftpbackupstorage/sshkey")["sshKey"]
    with CallbackReceiver(host=host_network.root_ip.split("/")[0]) as receiver:
        image = {"url": f"{bs.images.url}/image.qcow2",
                 "installPath": str(bs.root / "i.qcow2")}
        first = bs.call_async(DOWNLOAD, image, receiver)
        bs.host.stop_daemon("sftpbsagent")
        bs.start_agent()
        after = bs.call("/sftpbackupstorage/ping")
        assert (after["storagePath"], after["uuid"]) == (before["storagePath"], before["uuid"])
        assert bs.call("/sftpbackupstorage/sshkey")["sshKey"] == key
        again = bs.call_async(DOWNLOAD, image, receiver)  # answered from what it stored
    assert again["md5Sum"] == first["md5Sum"] and bs.images.hits["image.qcow2"] == 1


def test_help_lists_every_setting():
    out = shell.run([Path(sys.executable).parent / "sftpbsagent", "--help"]).stdout
    for flag in ("--file-url-roots", "--read-timeout", "--progress-seconds", "--data-dir"):
        assert flag in out
