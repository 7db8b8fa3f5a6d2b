"""RBD volumes and snapshots through librbd: create, clone, flatten, copy, resize, delete.

Every operation is idempotent: when the target already is what was asked (an image of
the same size, a clone of the same snapshot, a protected snapshot), it succeeds without
touching anything; when it exists but differs, it fails saying how. Deleting something
that is gone succeeds. Copies are written under a temporary name and renamed, so a
failed copy never leaves an image under the wanted name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import rbd

from cephagent.drivers.cluster import CephClient, CephError
from cephagent.models.paths import TMP_SUFFIX, RbdPath

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageSize:
    size: int  # virtual size, bytes
    actual_size: int  # bytes allocated by this image itself (``rbd du``), not its parent


class RbdImages:
    def __init__(self, client: CephClient):
        self.client = client

    @contextmanager
    def image(self, path: RbdPath, *, read_only: bool = False) -> Iterator[rbd.Image]:
        """The open image (at ``path.snap`` if given); a missing one is an error naming it."""
        with self.client.ioctx(path.pool) as ioctx, self.client.guard(str(path)):
            try:
                img = rbd.Image(ioctx, path.image, snapshot=path.snap, read_only=read_only)
            except rbd.ImageNotFound:
                what = "snapshot" if path.snap else "image"
                raise CephError(f"{path}: {what} does not exist") from None
            try:
                yield img
            finally:
                img.close()

    def exists(self, path: RbdPath) -> bool:
        with self.client.ioctx(path.pool) as ioctx, self.client.guard(str(path)):
            try:
                rbd.Image(ioctx, path.image, read_only=True).close()
            except rbd.ImageNotFound:
                return False
            return True

    # -- volumes -------------------------------------------------------------------

    def create_empty(self, path: RbdPath, size: int) -> None:
        with self.client.ioctx(path.pool) as ioctx, self.client.guard(f"create {path}"):
            try:
                rbd.RBD().create(ioctx, path.image, size, old_format=False)
                log.info("created %s (%d bytes)", path, size)
                return
            except rbd.ImageExists:
                pass
        existing = self.size(path).size
        if existing != size:
            raise CephError(f"{path} already exists with size {existing}, not {size}")

    def clone(self, src: RbdPath, dst: RbdPath) -> None:
        """A copy-on-write clone of the protected snapshot ``src`` named ``dst``."""
        if src.snap is None:
            raise CephError(f"{src}: a clone source must be a snapshot (ceph://pool/image@snap)")
        c = self.client
        with c.ioctx(src.pool) as p_ioctx, c.ioctx(dst.pool) as c_ioctx, \
                c.guard(f"clone {src} to {dst}"):
            try:
                rbd.RBD().clone(p_ioctx, src.image, src.snap, c_ioctx, dst.image)
                log.info("cloned %s to %s", src, dst)
                return
            except rbd.ImageExists:
                pass
            except rbd.ImageNotFound:
                raise CephError(f"clone {src} to {dst}: {src} does not exist") from None
            except rbd.InvalidArgument:
                if not self._snap_exists(src):
                    raise CephError(f"clone {src} to {dst}: {src} does not exist") from None
                raise CephError(f"clone {src} to {dst}: snapshot {src} is not protected "
                                "(protect or commit it first)") from None
        parent = self.parent(dst)
        if parent != src:
            raise CephError(f"{dst} already exists and is not a clone of {src} "
                            f"(its parent: {parent or 'none'})")

    def parent(self, path: RbdPath) -> RbdPath | None:
        with self.image(path, read_only=True) as img:
            try:
                pool, image, snap = img.parent_info()
            except rbd.ImageNotFound:  # librbd's way of saying "no parent"
                return None
        return RbdPath(pool, image, snap)

    def flatten(self, path: RbdPath, on_progress: Callable[[int, int], object] | None = None
                ) -> None:
        """Copy the parent's data into the clone ``path``; no-op if it has no parent."""
        with self.image(path) as img, self.client.guard(f"flatten {path}"):
            try:
                img.parent_info()
            except rbd.ImageNotFound:
                return
            img.flatten(on_progress=on_progress)
        log.info("flattened %s", path)

    def copy(self, src: RbdPath, dst: RbdPath) -> None:
        """A full, independent copy of image or snapshot ``src`` named ``dst``."""
        if self.exists(dst):
            if self.size(dst).size != self.size(src).size:
                raise CephError(f"{dst} already exists with a different size than {src}")
            return
        tmp = RbdPath(dst.pool, dst.image + TMP_SUFFIX)
        self.delete(tmp)  # a copy an earlier, interrupted call left
        try:
            with self.image(src, read_only=True) as img, \
                    self.client.ioctx(dst.pool) as ioctx, \
                    self.client.guard(f"copy {src} to {dst}"):
                img.copy(ioctx, tmp.image)
            self.rename(tmp, dst)
        except BaseException:
            self.discard(tmp)
            raise
        log.info("copied %s to %s", src, dst)

    def leftovers(self, pool: str) -> list[RbdPath]:
        """Images still under their temporary name in ``pool``: copies and downloads
        that an agent crash interrupted (the final name is the path minus TMP_SUFFIX)."""
        with self.client.ioctx(pool) as ioctx, self.client.guard(f"list pool {pool}"):
            names = rbd.RBD().list(ioctx)
        return [RbdPath(pool, n) for n in names if n.endswith(TMP_SUFFIX)]

    def rename(self, src: RbdPath, dst: RbdPath) -> None:
        with self.client.ioctx(src.pool) as ioctx, self.client.guard(f"rename {src} to {dst}"):
            rbd.RBD().rename(ioctx, src.image, dst.image)

    def resize(self, path: RbdPath, size: int) -> None:
        """Grow ``path`` to ``size`` bytes; shrinking is refused (it destroys data)."""
        with self.image(path) as img, self.client.guard(f"resize {path}"):
            current = img.size()
            if size < current:
                raise CephError(f"resize {path}: {size} is smaller than its size {current} "
                                "(shrinking is refused)")
            if size > current:
                img.resize(size)
                log.info("resized %s from %d to %d bytes", path, current, size)

    def size(self, path: RbdPath) -> ImageSize:
        """Virtual size and the bytes this image allocated itself (whole objects, like
        ``rbd du`` with fast-diff): a fresh clone allocates nothing of its parent's."""
        with self.image(path, read_only=True) as img:
            size = img.size()
            used = 0

            def count(offset: int, length: int, exists: bool) -> int:
                nonlocal used
                if exists:
                    used += length
                return 0

            img.diff_iterate(0, size, None, count, include_parent=False, whole_object=True)
        return ImageSize(size, used)

    def delete(self, path: RbdPath) -> bool:
        """Remove ``path``; True if it existed. Snapshots or clones make it fail and stay."""
        with self.client.ioctx(path.pool) as ioctx, self.client.guard(f"delete {path}"):
            try:
                rbd.RBD().remove(ioctx, path.image)
            except rbd.ImageNotFound:
                return False
            except rbd.ImageHasSnapshots:
                snaps = ", ".join(self.snapshots(path))
                raise CephError(f"delete {path}: it has snapshots ({snaps}); delete them "
                                "(and their clones) first") from None
            except rbd.ImageBusy:
                raise CephError(f"delete {path}: the image is in use (open by a client, e.g. "
                                "a running VM)") from None
        log.info("deleted %s", path)
        return True

    def discard(self, path: RbdPath) -> None:
        """Delete a partial image after a failure, without masking that failure."""
        try:
            self.delete(path)
        except CephError as exc:
            log.error("could not remove the partial image %s: %s", path, exc)

    # -- snapshots -----------------------------------------------------------------

    def snapshots(self, path: RbdPath) -> list[str]:
        with self.image(path.image_path, read_only=True) as img:
            return [s["name"] for s in img.list_snaps()]

    def _snap_exists(self, snap: RbdPath) -> bool:
        try:
            return snap.snap in self.snapshots(snap)
        except CephError:
            return False

    def children(self, snap: RbdPath) -> list[RbdPath]:
        with self.image(snap, read_only=True) as img:
            return [RbdPath(c["pool"], c["image"]) for c in img.list_children2()]

    def create_snapshot(self, snap: RbdPath) -> None:
        with self.image(snap.image_path) as img, self.client.guard(f"create {snap}"):
            try:
                img.create_snap(snap.snap)
                log.info("created snapshot %s", snap)
            except rbd.ImageExists:
                pass

    def delete_snapshot(self, snap: RbdPath) -> None:
        if not self.exists(snap.image_path):  # gone with its image
            return
        with self.image(snap.image_path) as img, self.client.guard(f"delete {snap}"):
            try:
                img.remove_snap(snap.snap)
                log.info("deleted snapshot %s", snap)
            except rbd.ImageNotFound:
                pass
            except rbd.ImageBusy:
                raise CephError(f"delete {snap}: the snapshot is protected "
                                "(unprotect it first)") from None

    def protect(self, snap: RbdPath) -> None:
        with self.image(snap.image_path) as img, self.client.guard(f"protect {snap}"):
            try:
                img.protect_snap(snap.snap)
            except rbd.ImageBusy:  # already protected
                pass
            except rbd.ImageNotFound:
                raise CephError(f"protect {snap}: snapshot does not exist") from None

    def unprotect(self, snap: RbdPath) -> None:
        with self.image(snap.image_path) as img, self.client.guard(f"unprotect {snap}"):
            try:
                if not img.is_protected_snap(snap.snap):
                    return
                img.unprotect_snap(snap.snap)
            except rbd.ImageNotFound:
                raise CephError(f"unprotect {snap}: snapshot does not exist") from None
            except rbd.ImageBusy:
                pass
            else:
                return
        kids = ", ".join(str(c) for c in self.children(snap))
        raise CephError(f"unprotect {snap}: it has clones ({kids}); delete or flatten them first")

    def rollback(self, snap: RbdPath) -> None:
        with self.image(snap.image_path) as img, self.client.guard(f"rollback to {snap}"):
            try:
                img.rollback_to_snap(snap.snap)
            except rbd.ImageNotFound:
                raise CephError(f"rollback to {snap}: snapshot does not exist") from None
        log.info("rolled %s back to %s", snap.image_path, snap)

    def commit(self, snap: RbdPath) -> None:
        """Snapshot and protect: ready to clone."""
        self.create_snapshot(snap)
        self.protect(snap)

    def purge(self, path: RbdPath) -> bool:
        """Delete ``path`` with all its snapshots; fails (deleting nothing more) while any
        snapshot has clones. True if the image existed."""
        if not self.exists(path):
            return False
        snaps = [RbdPath(path.pool, path.image, name) for name in self.snapshots(path)]
        kids = [str(c) for s in snaps for c in self.children(s)]
        if kids:
            raise CephError(f"delete {path}: its snapshots have clones ({', '.join(kids)}); "
                            "delete or flatten them first")
        for snap in snaps:
            self.unprotect(snap)
            self.delete_snapshot(snap)
        return self.delete(path)
