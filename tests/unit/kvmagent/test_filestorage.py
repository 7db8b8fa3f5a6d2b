"""File volumes on real qcow2 images in tmp_path: confinement to the root, backing chains,
growth, idempotent deletion, offline snapshot + merge keeping the guest's data."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agentlib import shell
from kvmagent.drivers import qemu_img
from kvmagent.drivers.filestorage import FileStorage, OutsideRoot, StorageError
from kvmagent.drivers.qemu_img import QemuImgError
from kvmagent.drivers.storage_roots import StorageRoots

MiB = 1 << 20


def qemu_io(path: Path, command: str) -> None:
    """Run one qemu-io command; a failed ``read -P`` pattern check raises."""
    shell.run(["qemu-io", "-f", "qcow2", "-c", command, str(path)])


def has_pattern(path: Path, byte: int, offset: int, length: int = MiB) -> bool:
    try:
        qemu_io(path, f"read -P {byte:#x} {offset} {length}")
    except shell.CommandFailed:
        return False
    return True


@contextmanager
def held_open(path: Path) -> Iterator[None]:
    """Hold ``path`` for writing as a running VM would (qemu-io keeps its image lock until
    its stdin closes), once qemu-io has taken the lock."""
    proc = subprocess.Popen(["qemu-io", "-f", "qcow2", str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not qemu_img.in_use(path):
            assert proc.poll() is None and time.monotonic() < deadline, "qemu-io never locked"
            time.sleep(0.02)
        yield
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def storage(tmp_path: Path) -> FileStorage:
    s = FileStorage(tmp_path / "ps")
    s.init()
    return s


@pytest.fixture
def cache(storage: FileStorage) -> Path:
    """A cached image with 0xab in its first MiB."""
    path = storage.create_empty(storage.root / "imagecache" / "img.qcow2", 8 * MiB)
    qemu_io(path, f"write -P 0xab 0 {MiB}")
    return path


# -- the root ------------------------------------------------------------------------


def test_local_init_creates_the_root_and_reports_capacity(tmp_path):
    s = FileStorage(tmp_path / "a" / "b")
    total, available = s.init()
    assert s.root.is_dir() and tree(s.root) == set()  # the write probe left nothing
    assert total > 0 and 0 < available <= total
    assert s.capacity()[0] == total


def test_shared_mount_point_must_already_exist(tmp_path):
    missing = FileStorage(tmp_path / "mnt", shared=True)
    with pytest.raises(StorageError, match=f"shared mount point {tmp_path}/mnt does not exist"):
        missing.init()
    assert not (tmp_path / "mnt").exists()
    (tmp_path / "mnt").mkdir()
    assert missing.init()[0] > 0


def test_slash_is_never_a_root():
    with pytest.raises(StorageError, match="refusing / as a local storage root"):
        FileStorage("/").init()


def test_resolve_keeps_paths_strictly_inside_the_root(storage, tmp_path):
    root = storage.root
    assert storage.resolve(root / "v" / "a.qcow2") == root / "v" / "a.qcow2"
    for bad in [root / ".." / "x.qcow2", f"{root}/v/../../x", "/etc/passwd", root,
                f"{root}/..", "relative/x.qcow2", f"{root}x/a.qcow2"]:
        with pytest.raises(OutsideRoot):
            storage.resolve(bad)


def test_symlinks_pointing_out_of_the_root_are_refused(storage, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("x")
    (storage.root / "dirlink").symlink_to(outside)
    (storage.root / "filelink.qcow2").symlink_to(outside / "secret")
    (storage.root / "dangling.qcow2").symlink_to(outside / "new.qcow2")
    for link in ["dirlink/secret", "dirlink/new.qcow2", "filelink.qcow2", "dangling.qcow2"]:
        with pytest.raises(OutsideRoot, match="resolves to"):
            storage.resolve(storage.root / link)
    with pytest.raises(OutsideRoot):
        storage.create_empty(storage.root / "dangling.qcow2", MiB)
    with pytest.raises(OutsideRoot):
        storage.delete(storage.root / "filelink.qcow2")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    (storage.root / "inner").mkdir()
    (storage.root / "innerlink").symlink_to(storage.root / "inner")
    assert storage.resolve(storage.root / "innerlink" / "v") == storage.root / "inner" / "v"


# -- volumes -------------------------------------------------------------------------


def test_create_empty_is_a_qcow2_of_the_size_rounded_to_a_sector(storage):
    path = storage.create_empty(storage.root / "vol" / "v1" / "v1.qcow2", 10 * MiB + 1)
    image = qemu_img.info(path)
    assert (image.format, image.virtual_size, image.backing_file) == (
        "qcow2", 10 * MiB + 512, None)
    assert tree(storage.root) == {"vol", "vol/v1", "vol/v1/v1.qcow2"}  # no temporary left


def test_create_empty_again_is_success_but_a_different_existing_file_is_refused(storage):
    path = storage.create_empty(storage.root / "v.qcow2", 4 * MiB)
    qemu_io(path, f"write -P 0x11 0 {MiB}")
    storage.create_empty(path, 4 * MiB)  # a retry: same thing, left alone
    with pytest.raises(StorageError, match=r"already exists .* it is qcow2, 4194304 bytes"):
        storage.create_empty(path, 8 * MiB)
    assert qemu_img.info(path).virtual_size == 4 * MiB and has_pattern(path, 0x11, 0)


def test_a_failed_create_leaves_nothing_behind(storage):
    before = tree(storage.root)
    with pytest.raises(QemuImgError, match="qemu-img"):
        storage.create_empty(storage.root / "a" / "b" / "v.qcow2", 1 << 62)  # too big
    assert tree(storage.root) == before


def test_volume_from_cache_is_backed_by_the_cache_and_sees_its_data(storage, cache):
    path = storage.create_from_cache(storage.root / "vol" / "root.qcow2", cache)
    image = storage.info(path)
    assert (image.format, image.backing_file, image.backing_format) == (
        "qcow2", str(cache), "qcow2")
    assert image.virtual_size == 8 * MiB
    assert storage.chain(path) == [path, cache]
    assert has_pattern(path, 0xab, 0)
    qemu_io(path, f"write -P 0xcd 0 {MiB}")  # copy-on-write: the cache is untouched
    assert has_pattern(path, 0xcd, 0) and has_pattern(cache, 0xab, 0)
    storage.create_from_cache(path, cache)  # a retry
    assert has_pattern(path, 0xcd, 0)


def test_volume_from_a_missing_or_escaping_cache_is_refused(storage, tmp_path):
    before = tree(storage.root)
    with pytest.raises(StorageError, match="image cache .*/nope.qcow2 not found"):
        storage.create_from_cache(storage.root / "v.qcow2", storage.root / "nope.qcow2")
    outside = tmp_path / "base.qcow2"
    qemu_img.create(outside, MiB)
    with pytest.raises(OutsideRoot):
        storage.create_from_cache(storage.root / "v.qcow2", outside)
    # a cache file inside the root whose backing file is elsewhere is not followed
    sneaky = storage.root / "sneaky.qcow2"
    qemu_img.create_with_backing(sneaky, outside, "qcow2")
    with pytest.raises(StorageError, match=f"backing file {outside} outside"):
        storage.create_from_cache(storage.root / "v.qcow2", sneaky)
    assert tree(storage.root) == before | {"sneaky.qcow2"}


def test_resize_grows_and_refuses_to_shrink(storage):
    path = storage.create_empty(storage.root / "v.qcow2", 4 * MiB)
    assert storage.resize(path, 8 * MiB + 100) == 8 * MiB + 512
    assert qemu_img.info(path).virtual_size == 8 * MiB + 512
    assert storage.resize(path, 8 * MiB + 512) == 8 * MiB + 512  # same size: nothing to do
    with pytest.raises(QemuImgError, match=f"shrink {path} from 8389120 to 2097152 bytes"):
        storage.resize(path, 2 * MiB)
    assert qemu_img.info(path).virtual_size == 8 * MiB + 512
    with pytest.raises(StorageError, match="not found"):
        storage.resize(storage.root / "missing.qcow2", 8 * MiB)


def test_delete_is_idempotent_and_tidies_the_volume_directory(storage):
    a = storage.create_empty(storage.root / "vol" / "v1" / "a.qcow2", MiB)
    b = storage.create_empty(storage.root / "vol" / "v1" / "b.qcow2", MiB)
    assert storage.delete(a) is True
    assert storage.delete(a) is False  # already gone: success
    assert b.exists()  # directory still holds b
    assert storage.delete(b) is True
    assert tree(storage.root) == {"vol"}
    top = storage.create_empty(storage.root / "top.qcow2", MiB)
    storage.delete(top)
    assert storage.root.is_dir()  # the root itself is never removed
    with pytest.raises(StorageError, match="is a directory"):
        storage.delete(storage.root / "vol")


def test_volumes_in_use_are_not_deleted_resized_or_snapshotted(storage):
    path = storage.create_empty(storage.root / "v.qcow2", MiB)
    with held_open(path):
        with pytest.raises(StorageError, match="cannot delete .* in use"):
            storage.delete(path)
        with pytest.raises(StorageError, match="cannot resize .* in use"):
            storage.resize(path, 2 * MiB)
        with pytest.raises(StorageError, match="cannot snapshot .* in use"):
            storage.take_snapshot(path, storage.root / "new.qcow2")
    assert tree(storage.root) == {"v.qcow2"}
    assert qemu_img.info(path).virtual_size == MiB


# -- offline snapshots ----------------------------------------------------------------


def test_snapshot_then_full_merge_keeps_the_data(storage, cache):
    volume = storage.create_from_cache(storage.root / "vol" / "v.qcow2", cache)
    qemu_io(volume, f"write -P 0x11 {MiB} {MiB}")
    snap = storage.take_snapshot(volume, storage.root / "vol" / "v-1.qcow2")
    assert snap.snapshot_path == volume and snap.volume_path == storage.root / "vol" / "v-1.qcow2"
    assert storage.chain(snap.volume_path) == [snap.volume_path, volume, cache]
    assert storage.take_snapshot(volume, snap.volume_path) == snap  # a retry
    qemu_io(snap.volume_path, f"write -P 0x22 {2 * MiB} {MiB}")
    assert not has_pattern(volume, 0x22, 2 * MiB)  # the snapshot is frozen

    merged = storage.merge_snapshot(snap.volume_path)
    assert merged.backing is None and storage.chain(snap.volume_path) == [snap.volume_path]
    storage.delete(volume)
    storage.delete(cache)
    for byte, offset in [(0xab, 0), (0x11, MiB), (0x22, 2 * MiB)]:
        assert has_pattern(snap.volume_path, byte, offset)
    assert qemu_img.check(snap.volume_path).ok


def test_merge_onto_an_older_snapshot_drops_the_ones_between(storage, cache):
    v0 = storage.create_from_cache(storage.root / "v0.qcow2", cache)
    qemu_io(v0, f"write -P 0x11 {MiB} {MiB}")
    v1 = storage.take_snapshot(v0, storage.root / "v1.qcow2").volume_path
    qemu_io(v1, f"write -P 0x22 {2 * MiB} {MiB}")
    v2 = storage.take_snapshot(v1, storage.root / "v2.qcow2").volume_path
    qemu_io(v2, f"write -P 0x33 {3 * MiB} {MiB}")

    with pytest.raises(StorageError, match="not in the backing chain"):
        storage.merge_snapshot(v2, storage.root / "unrelated.qcow2")
    merged = storage.merge_snapshot(v2, v0)
    assert merged.backing_file == str(v0)
    assert storage.chain(v2) == [v2, v0, cache]
    storage.delete(v1)
    for byte, offset in [(0xab, 0), (0x11, MiB), (0x22, 2 * MiB), (0x33, 3 * MiB)]:
        assert has_pattern(v2, byte, offset)


# -- qemu-img facts -------------------------------------------------------------------


def test_info_reports_internal_snapshots_and_errors_carry_stderr(storage, tmp_path):
    path = storage.create_empty(storage.root / "v.qcow2", MiB)
    shell.run(["qemu-img", "snapshot", "-c", "before-upgrade", str(path)])
    assert qemu_img.info(path).snapshots == ("before-upgrade",)
    with pytest.raises(QemuImgError, match="Could not open .*missing.qcow2"):
        qemu_img.info(tmp_path / "missing.qcow2")


def test_check_and_convert(storage, cache, tmp_path):
    assert qemu_img.check(cache) == qemu_img.CheckResult(supported=True)
    raw = tmp_path / "copy.raw"
    qemu_img.convert(cache, raw, "raw")
    assert qemu_img.info(raw).format == "raw" and raw.stat().st_size == 8 * MiB
    assert qemu_img.check(raw).supported is False


# -- the roots this host serves --------------------------------------------------------


def test_roots_persist_and_each_path_finds_its_storage(tmp_path):
    local = FileStorage(tmp_path / "local")
    local.init()
    shared = FileStorage(tmp_path / "mnt", shared=True)
    (tmp_path / "mnt").mkdir()
    shared.init()
    roots = StorageRoots(tmp_path / "state" / "filestorage.json")
    with pytest.raises(StorageError, match="no file storage is set up"):
        roots.find(tmp_path / "local" / "v.qcow2")
    roots.add(local)
    roots.add(shared)
    roots.add(shared)

    again = StorageRoots(tmp_path / "state" / "filestorage.json")  # an agent restart
    assert again.find(tmp_path / "mnt" / "v.qcow2").shared is True
    assert again.find(tmp_path / "local" / "v.qcow2", shared=False).root == local.root
    with pytest.raises(OutsideRoot, match=f"outside every storage root .*local storage "
                                          f"{tmp_path}/local"):
        again.find(tmp_path / "mnt" / "v.qcow2", shared=False)
    with pytest.raises(OutsideRoot):
        again.find("/etc/passwd")
    assert again.get(f"{tmp_path}/mnt/", shared=True).root == shared.root
    with pytest.raises(StorageError, match="connect it first"):
        again.get(tmp_path / "local", shared=True)
    assert len(again.storages()) == 2 and os.path.exists(tmp_path / "state" / "filestorage.json")
