"""Local storage volume migration between two simulated hosts, each with a real kvmagent:
host A's agent copies a volume with its backing chain to host B over ssh (B runs its own
sshd on its mgmt IP). The hosts share one filesystem, so each has its own storage root
and the bytes really travel over ssh from A's root to B's."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentlib import shell
from devcluster import procs
from devcluster.kvmhost import storage_dir
from devcluster.sshd import authorize_agent, start_sshd
from tests.fixtures.kvm import KvmHost

pytestmark = pytest.mark.integration

MIGRATE = "/localstorage/volume/migrate"


@dataclass
class Pair:
    a: KvmHost
    b: KvmHost
    a_root: Path
    b_root: Path

    def migrate(self, **body) -> dict:
        body = {"dstHostIp": self.b.host.mgmt_address, "dstStorageRoot": str(self.b_root),
                **body}
        return self.a.call_async(MIGRATE, body, timeout=120)


@pytest.fixture
def pair(kvm_host_factory) -> Pair:
    a, b = kvm_host_factory(), kvm_host_factory()
    start_sshd(b.host)
    authorize_agent(a.url, b.host)
    roots = []
    for kvm in (a, b):
        root = storage_dir(kvm.host) / "localstorage"
        assert kvm.call("/localstorage/init", {"path": str(root)}).json()["success"]
        roots.append(root)
    return Pair(a, b, *roots)


def qemu_img(*args) -> str:
    return shell.run(["qemu-img", *args]).stdout


def qemu_io(path: Path, *cmds: str) -> str:
    argv = ["qemu-io", "-f", "qcow2"]
    for c in cmds:
        argv += ["-c", c]
    out = shell.run([*argv, str(path)]).stdout
    assert "failed" not in out.lower(), out
    return out


def chain(path: Path) -> list[str]:
    return [layer["filename"] for layer in
            json.loads(qemu_img("info", "--output=json", "--backing-chain", "-U", str(path)))]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def make_volume(p: Pair) -> tuple[Path, Path, Path]:
    """On A: a cached image (0x11 in its first 4 MiB), a volume from it (via A's agent)
    written 0x5a at 0-1 MiB, then an external snapshot: the volume file becomes the
    snapshot, a new overlay the volume, written 0xa5 at 1-2 MiB."""
    cache = p.a_root / "imagecache" / "template" / "img1" / "img1.qcow2"
    cache.parent.mkdir(parents=True)
    qemu_img("create", "-q", "-f", "qcow2", str(cache), "8M")
    qemu_io(cache, "write -P 0x11 0 4M")
    vol_dir = p.a_root / "rootVolumes" / "acct" / uuid.uuid4().hex
    snap = vol_dir / "snap1.qcow2"
    reply = p.a.call("/localstorage/volume/createvolumefromcache", {
        "templatePathInCache": str(cache), "installUrl": str(snap)}).json()
    assert reply["success"], reply
    qemu_io(snap, "write -P 0x5a 0 1M")
    top = vol_dir / "vol.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(snap), "-F", "qcow2", str(top))
    qemu_io(top, "write -P 0xa5 1M 1M")
    return cache, snap, top


def test_volume_moves_with_its_snapshots_and_cache_and_is_verified(pair):
    cache, snap, top = make_volume(pair)
    sources = {f: sha256(f) for f in (cache, snap, top)}

    reply = pair.migrate(srcInstallPath=str(top))
    assert reply["success"], reply
    moved = [pair.b_root / f.relative_to(pair.a_root) for f in (cache, snap, top)]
    assert reply["dstInstallPaths"] == [str(moved[2])]
    assert [(f["srcPath"], f["dstPath"], f["reused"]) for f in reply["files"]] == [
        (str(src), str(dst), False) for src, dst in zip((cache, snap, top), moved, strict=True)]
    assert [f["sha256"] for f in reply["files"]] == [sources[f] for f in (cache, snap, top)]

    # B's copy is a chain of B's files, with the same guest data as A's volume
    assert chain(moved[2]) == [str(m) for m in reversed(moved)]
    qemu_io(moved[2], "read -P 0x5a 0 1M", "read -P 0xa5 1M 1M", "read -P 0x11 2M 2M",
            "read -P 0 4M 4M")
    shell.run(["qemu-img", "compare", "-U", str(top), str(moved[2])])  # guest-visible bytes
    assert sha256(moved[0]) == sources[cache]  # the base is byte for byte the same
    # overlays differ only in the backing path in their header
    assert qemu_img("check", str(moved[1])) and qemu_img("check", str(moved[2]))
    # A is untouched, and nothing but the chain appeared on B
    assert {f: sha256(f) for f in sources} == sources and chain(top) == [
        str(top), str(snap), str(cache)]
    assert not [f for f in files_under(pair.b_root) if "migrating" in f]
    assert "Accepted publickey for root" in (pair.b.host.dir / "log" / "sshd.log").read_text()

    # a second volume on the same cached image: the cache already on B is reused
    other = pair.a_root / "dataVolumes" / "v2.qcow2"
    assert pair.a.call("/localstorage/volume/createvolumefromcache", {
        "templatePathInCache": str(cache), "installUrl": str(other)}).json()["success"]
    again = pair.migrate(paths=[str(other)])
    assert again["success"], again
    assert [f["reused"] for f in again["files"]] == [True, False]
    # and an existing volume there is never overwritten
    refused = pair.migrate(srcInstallPath=str(top))
    assert not refused["success"] and "already exists" in refused["error"]
    assert chain(moved[2]) == [str(m) for m in reversed(moved)]


def test_volume_a_running_vm_uses_is_refused_and_nothing_reaches_b(pair):
    vm_dir = pair.a_root / "rootVolumes" / "vm1"
    vm_dir.mkdir(parents=True)
    root, data = vm_dir / "root.qcow2", vm_dir / "data.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(root), "64M")
    qemu_img("create", "-q", "-f", "qcow2", str(data), "16M")
    cmd = pair.a.start_cmd()
    vm = cmd["vmInstanceUuid"]
    cmd["rootVolume"]["installPath"] = str(root)
    cmd["dataVolumes"] = [{"volumeUuid": uuid.uuid4().hex, "installPath": str(data),
                           "deviceId": 1}]
    assert pair.a.call_async("/vm/start", cmd)["success"]

    running = pair.migrate(srcInstallPath=str(root), vmUuid=vm, volumeType="Root")
    assert not running["success"] and f"VM {vm}" in running["error"]
    assert "stop it first" in running["error"]
    attached = pair.migrate(srcInstallPath=str(data), vmUuid=vm, volumeType="Data")
    assert not attached["success"] and "detach it first" in attached["error"]
    unnamed = pair.migrate(srcInstallPath=str(root))  # libvirt knows whose it is
    assert not unnamed["success"] and vm in unnamed["error"]
    assert files_under(pair.b_root) == []

    # stopped, the VM's root volume moves
    assert pair.a.call_async("/vm/destroy", {"uuid": vm})["success"]
    moved = pair.migrate(srcInstallPath=str(root), vmUuid=vm, volumeType="root")
    assert moved["success"], moved
    assert files_under(pair.b_root) == ["rootVolumes", "rootVolumes/vm1",
                                        "rootVolumes/vm1/root.qcow2"]


def test_a_failed_copy_leaves_nothing_on_b(pair):
    cache, snap, top = make_volume(pair)
    # hostile or wrong input is refused before any connection
    ip = pair.b.host.mgmt_address
    for field, value in (("dstUsername", "-oProxyCommand=sh"), ("dstHostIp", f"{ip};id"),
                         ("dstInstallPath", "/etc/passwd")):
        bad = pair.a.post_async(MIGRATE, {"srcInstallPath": str(top), "dstHostIp": ip,
                                          "dstStorageRoot": str(pair.b_root), field: value})
        assert bad.status_code == 400 and field in bad.json()["error"], bad.text
    outside = pair.migrate(srcInstallPath="/etc/passwd")
    assert not outside["success"] and "srcInstallPath" in outside["error"]

    # B unreachable: nothing listens on that port
    port = procs.free_port()
    unreachable = pair.migrate(srcInstallPath=str(top), dstSshPort=port)
    assert not unreachable["success"] and "Connection refused" in unreachable["error"]
    assert files_under(pair.b_root) == []

    # too little space on B: refused before anything is copied
    small = pair.b.host.dir / "small"
    small.mkdir()
    pair.b.host.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(small)])
    full = pair.migrate(srcInstallPath=str(top), dstStorageRoot=str(small))
    assert not full["success"] and "not enough space" in full["error"], full["error"]
    assert pair.b.host.run(["find", str(small), "-mindepth", "1"]).stdout == ""

    # B's storage fails in the middle: room for the 6 directories and the first file of
    # the chain (the cache) only; the second file (the snapshot) cannot be created
    pair.b.host.run(["mount", "-t", "tmpfs", "-o", "size=64M,nr_inodes=8", "tmpfs",
                     str(small)])
    half = pair.migrate(srcInstallPath=str(top), dstStorageRoot=str(small))
    assert not half["success"] and f".{snap.name}." in half["error"], half["error"]
    log = (pair.a.host.dir / "log" / "kvmagent.log").read_text()
    assert f"copied {cache} to {pair.b.host.mgmt_address}:{small}" in log
    assert pair.b.host.run(["find", str(small), "-mindepth", "1"]).stdout == ""

    # the source is unharmed and still migrates
    assert pair.migrate(srcInstallPath=str(top))["success"]
