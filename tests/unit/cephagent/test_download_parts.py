"""The download's pure parts: re-cutting a stream into whole objects, and qemu's rbd
target string (options escaped so a path cannot inject settings)."""

from pathlib import Path

from cephagent.drivers.cluster import CephClient
from cephagent.drivers.download import ImageDownloader, _aligned
from cephagent.models.paths import RbdPath


def test_aligned_cuts_whole_pieces_and_keeps_every_byte():
    data = bytes(range(256)) * 40  # 10240 bytes
    pieces = [data[:3], data[3:4096], data[4096:4100], data[4100:9000], data[9000:]]
    out = list(_aligned(pieces, 1024))
    assert b"".join(out) == data
    assert [len(p) for p in out] == [1024] * 10
    assert list(_aligned([data[:2048]], 2048)) == [data[:2048]]  # whole ones pass as they are
    assert [len(p) for p in _aligned([data[:1500]], 1024)] == [1024, 476]
    assert list(_aligned([], 1024)) == []


def test_qemu_target_escapes_option_separators():
    client = CephClient(Path("/etc/ceph:x/ceph.conf"), "admin", 5)
    d = ImageDownloader(client, None, Path("/tmp"))
    target = d._qemu_target(RbdPath("pool", "img.zfleet-tmp"))
    assert target == ("rbd:pool/img.zfleet-tmp:id=admin:conf=/etc/ceph\\:x/ceph.conf"
                      ":client_mount_timeout=5:rados_mon_op_timeout=5")
