"""Image transfer between a simulated KVM host (real kvmagent) and an SFTP backup storage
(real sftpbsagent and sshd in another simulated host): download into the backup storage
-> hash -> pull into the host's image cache -> a qcow2 volume backed by it -> upload
back as a new image."""

from __future__ import annotations

import hashlib
import threading
import uuid

import pytest

from agentlib import shell
from agentlib.receiver import CallbackReceiver
from devcluster import procs
from devcluster.kvmhost import storage_dir
from devcluster.sshd import authorize_agent

pytestmark = pytest.mark.integration

BS = "/sftpbackupstorage"


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def qemu_io(path, cmd: str, *opts: str) -> str:
    out = shell.run(["qemu-io", "-f", "qcow2", *opts, "-c", cmd, str(path)]).stdout
    assert "failed" not in out.lower() and "pattern verification" not in out, out
    return out


def test_download_pull_volume_upload_round_trip(kvm_host, sftpbs_host, host_network):
    kvm, bs = kvm_host, sftpbs_host
    root = storage_dir(kvm.host) / "localstorage"
    assert kvm.call("/localstorage/init", {"path": str(root)}).json()["success"]
    ip = host_network.root_ip.split("/")[0]
    with CallbackReceiver(host=ip) as receiver:
        image = bs.call_async(f"{BS}/download", {"url": f"{bs.images.url}/image.qcow2",
                                                  "installPath": str(bs.root / "i1.qcow2")},
                              receiver)
    assert image["success"], image
    assert bs.call(f"{BS}/gethash", {"path": str(bs.root / "i1.qcow2")})["hash"] == \
        image["md5Sum"]

    where = {"hostname": bs.host.mgmt_address, "username": "root", "sshPort": 22}
    cache = root / "imagecache" / "template" / "i1" / "i1.qcow2"
    pull = {**where, "backupStorageInstallPath": str(bs.root / "i1.qcow2"),
            "primaryStorageInstallPath": str(cache), "md5Sum": image["md5Sum"],
            "actualSize": image["actualSize"]}
    denied = kvm.call_async("/localstorage/sftp/download", pull)
    assert not denied["success"] and "Permission denied" in denied["error"], denied
    assert not (root / "imagecache").exists()  # nothing left behind

    authorize_agent(kvm.url, bs.host)
    replies: list[dict] = []
    threads = [threading.Thread(target=lambda: replies.append(
        kvm.call_async("/localstorage/sftp/download", pull))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r["success"] for r in replies), replies
    assert sorted(r["reused"] for r in replies) == [False, True]  # copied once
    assert md5(cache) == image["md5Sum"] and oct(cache.stat().st_mode & 0o777) == "0o444"
    assert sorted(p.name for p in cache.parent.iterdir()) == ["i1.qcow2"]

    damaged = kvm.call_async("/localstorage/sftp/download", {
        **pull, "primaryStorageInstallPath": str(cache.with_name("other.qcow2")),
        "md5Sum": "0" * 32})
    assert not damaged["success"] and "arrived damaged" in damaged["error"], damaged
    short = kvm.call_async("/localstorage/sftp/download", {
        **pull, "primaryStorageInstallPath": str(cache.with_name("other.qcow2")),
        "md5Sum": None, "actualSize": image["actualSize"] + 1})
    assert not short["success"] and "expected" in short["error"], short
    assert sorted(p.name for p in cache.parent.iterdir()) == ["i1.qcow2"]
    unhashed = kvm.call_async("/localstorage/sftp/download", {
        **pull, "primaryStorageInstallPath": str(cache.with_name("sized.qcow2")),
        "md5Sum": None})  # size check only: not hashed
    assert unhashed["success"] and unhashed["md5Sum"] == "", unhashed
    assert md5(cache.with_name("sized.qcow2")) == image["md5Sum"]

    volume = root / "rootVolumes" / uuid.uuid4().hex / "root.qcow2"
    made = kvm.call("/localstorage/volume/createvolumefromcache", {
        "templatePathInCache": str(cache), "installUrl": str(volume)}).json()
    assert made["success"], made
    qemu_io(volume, "write -P 0xa5 4M 1M")  # the guest's own data on top of the image

    target = bs.root / "images" / "from-volume.qcow2"
    upload = {**where, "primaryStorageInstallPath": str(volume),
              "backupStorageInstallPath": str(target)}
    up = kvm.call_async("/localstorage/sftp/upload", upload)
    assert up["success"] and not up["reused"], up
    assert up["md5Sum"] == md5(target) and up["size"] == 64 << 20
    size = bs.call(f"{BS}/getimagesize", {"installPath": str(target)})
    assert size["success"] and size["size"] == 64 << 20, size  # standalone: BS accepts it
    qemu_io(target, "read -P 0x5a 0 4M", "-r")  # the image's data, flattened in
    qemu_io(target, "read -P 0xa5 4M 1M", "-r")  # and the volume's
    assert kvm.call_async("/localstorage/sftp/upload", upload)["reused"]  # a retry
    assert sorted(p.name for p in target.parent.iterdir()) == ["from-volume.qcow2"]
    assert sorted(p.name for p in volume.parent.iterdir()) == ["root.qcow2"]  # no temp left


def test_hostile_input_is_refused(kvm_host):
    bad = [
        ({"hostname": "-oProxyCommand=x", "backupStorageInstallPath": "/a",
          "primaryStorageInstallPath": "/b"}, "hostname"),
        ({"hostname": "10.0.0.1", "username": "root;id", "backupStorageInstallPath": "/a",
          "primaryStorageInstallPath": "/b"}, "username"),
        ({"hostname": "10.0.0.1", "backupStorageInstallPath": "/a/../../etc/shadow",
          "primaryStorageInstallPath": "/b"}, "backupStorageInstallPath"),
        ({"hostname": "10.0.0.1", "backupStorageInstallPath": "/a",
          "primaryStorageInstallPath": "/b", "md5Sum": "xyz"}, "md5Sum"),
    ]
    for body, field in bad:
        resp = kvm_host.post_async("/localstorage/sftp/download", body)
        assert resp.status_code == 400 and field in resp.json()["error"], (body, resp.text)
    outside = kvm_host.call_async("/localstorage/sftp/download", {
        "hostname": "10.0.0.1", "backupStorageInstallPath": "/a",
        "primaryStorageInstallPath": "/etc/evil.qcow2"})
    assert not outside["success"] and "primaryStorageInstallPath" in outside["error"]


def test_a_cancelled_pull_leaves_nothing(kvm_host, sftpbs_host):
    kvm, bs = kvm_host, sftpbs_host
    root = storage_dir(kvm.host) / "localstorage"
    assert kvm.call("/localstorage/init", {"path": str(root)}).json()["success"]
    authorize_agent(kvm.url, bs.host)
    big = bs.root / "big.raw"  # 2 GiB of zeros: seconds over ssh, it is cancelled first
    shell.run(["truncate", "-s", "2G", str(big)])
    cache = root / "imagecache" / "big.raw"
    taskuuid = uuid.uuid4().hex
    ack = kvm.post_async("/localstorage/sftp/download", {
        "hostname": bs.host.mgmt_address, "backupStorageInstallPath": str(big),
        "primaryStorageInstallPath": str(cache)}, taskuuid)
    assert ack.status_code == 200, ack.text
    procs.wait_for(lambda: any(p.stat().st_size for p in cache.parent.glob(".big.raw.*")),
                   30, "the pull writing its temporary file", interval=0.02)
    assert kvm.call("/job/cancel", {"taskUuid": taskuuid}).json()["success"]
    [reply] = kvm.receiver.wait(timeout=30, taskuuid=taskuuid)
    assert not reply.body["success"] and "cancelled" in reply.body["error"], reply.body
    assert not (root / "imagecache").exists()  # the temporary file and its directory
