"""Images, their copies on backup storages and their caches on primary storages:
``image``, ``image_bs`` (keyed by image and backup storage, no uuid of its own) and
``image_cache``."""

from __future__ import annotations

from dataclasses import dataclass

from coordinator.db import Database, NotFound, now
from coordinator.repos.record import Repo, columns, from_row, to_row


@dataclass(frozen=True)
class Image:
    uuid: str
    name: str
    url: str
    format: str
    description: str = ""
    media_type: str = "RootVolumeTemplate"
    platform: str = "Linux"
    guest_os_type: str = ""
    status: str = "Downloading"
    state: str = "Enabled"
    size: int = 0
    actual_size: int = 0
    md5: str = ""
    system: int = 0
    created: float | None = None
    updated: float | None = None


@dataclass(frozen=True)
class ImageCopy:
    """The image on one backup storage."""

    image_uuid: str
    bs_uuid: str
    install_path: str | None = None
    status: str = "Downloading"
    updated: float | None = None


@dataclass(frozen=True)
class ImageCache:
    """The image in a primary storage's cache (``host_uuid`` '' when the cache is the
    storage's, the host's on local storage)."""

    uuid: str
    ps_uuid: str
    image_uuid: str
    install_path: str
    host_uuid: str = ""
    status: str = "Downloading"
    size: int = 0
    created: float | None = None
    updated: float | None = None


class Images(Repo[Image]):
    table = "image"
    record = Image


class ImageCaches(Repo[ImageCache]):
    table = "image_cache"
    record = ImageCache

    def lookup(self, ps_uuid: str, host_key: str, image_uuid: str,
               status: str | None = None) -> ImageCache | None:
        """The image's cache on ``ps_uuid`` (for host ``host_key``, '' for the storage's)."""
        where = "ps_uuid = ? AND host_uuid = ? AND image_uuid = ?"
        params: tuple = (ps_uuid, host_key, image_uuid)
        if status is not None:
            where, params = f"{where} AND status = ?", (*params, status)
        rows = self.where(where, params)
        return rows[0] if rows else None

    def forget(self, ps_uuid: str, host_key: str, image_uuid: str) -> None:
        """Drop the image's cache row on ``ps_uuid`` for ``host_key``."""
        with self.db.tx():
            self.db.conn().execute("DELETE FROM image_cache WHERE ps_uuid = ? AND "
                                   "host_uuid = ? AND image_uuid = ?",
                                   (ps_uuid, host_key, image_uuid))

    def copy_to_host(self, cache: dict, host_uuid: str, uuid: str) -> None:
        """The same cache, Ready for ``host_uuid`` too (a volume's backing file went
        along with it); one there already stays."""
        with self.db.tx():
            self.db.conn().execute(
                "INSERT OR IGNORE INTO image_cache (uuid, ps_uuid, host_uuid, image_uuid, "
                "install_path, status, size, created, updated) VALUES (?, ?, ?, ?, ?, "
                "'Ready', ?, ?, ?)", (uuid, cache["ps_uuid"], host_uuid, cache["image_uuid"],
                                      cache["install_path"], cache["size"], cache["created"],
                                      cache["updated"]))


class ImageCopies:
    """The ``image_bs`` rows, keyed by (image, backup storage)."""

    table = "image_bs"

    def __init__(self, db: Database):
        self.db = db

    def get(self, image_uuid: str, bs_uuid: str) -> ImageCopy:
        rows = self.db.find(self.table, "image_uuid = ? AND bs_uuid = ?", (image_uuid, bs_uuid))
        if not rows:
            raise NotFound(f"image {image_uuid} has no copy on backup storage {bs_uuid}")
        return from_row(ImageCopy, rows[0])

    def of_image(self, image_uuid: str, status: str | None = None) -> list[ImageCopy]:
        where, params = "image_uuid = ?", (image_uuid,)
        if status is not None:
            where, params = f"{where} AND status = ?", (image_uuid, status)
        return [from_row(ImageCopy, r) for r in self.db.find(self.table, where, params)]

    def in_status_since(self, status: str, before: float) -> list[ImageCopy]:
        """Copies in ``status`` not changed after ``before`` (the expunger's scan)."""
        return [from_row(ImageCopy, r) for r in self.db.find(
            self.table, "status = ? AND updated <= ? ORDER BY image_uuid", (status, before))]

    def ready_on(self, image_uuid: str, bs_where: str, params: tuple) -> list[tuple[str, str]]:
        """(backup storage uuid, path) of the image's Ready copies on the backup storages
        matching ``bs_where`` (a condition on ``b``, the backup_storage row)."""
        return [tuple(r) for r in self.db.conn().execute(
            "SELECT b.uuid, r.install_path FROM image_bs r JOIN backup_storage b ON "
            f"b.uuid = r.bs_uuid WHERE r.image_uuid = ? AND r.status = 'Ready' AND "
            f"{bs_where}", (image_uuid, *params))]

    def insert(self, copy: ImageCopy) -> None:
        with self.db.tx() as db:
            db[self.table].insert({**to_row(copy), "updated": copy.updated or now()})

    def update(self, image_uuid: str, bs_uuid: str, **changes) -> int:
        """Set fields of one copy (``updated`` is stamped); how many rows changed."""
        return self.db.update_where(self.table, "image_uuid = ? AND bs_uuid = ?",
                                    (image_uuid, bs_uuid), **columns(ImageCopy, changes))

    def delete(self, image_uuid: str, bs_uuid: str) -> None:
        with self.db.tx():
            self.db.conn().execute(f"DELETE FROM {self.table} WHERE image_uuid = ? AND "
                                   "bs_uuid = ?", (image_uuid, bs_uuid))
