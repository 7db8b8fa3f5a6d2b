"""Images: AddImage downloads a URL into each named backup storage (long: ZStack 1.1
gives it 3 hours), then the image is Ready with its size and md5. Deleting, recovering
and expunging images: :mod:`coordinator.services.imagedeletion`."""

from __future__ import annotations

import logging

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.services import backends
from coordinator.services.backends.backup import Downloaded
from coordinator.services.lookup import require

log = logging.getLogger(__name__)


def download_to(ctx: Context, bs: dict, image: dict, url: str,
                deadline: Deadline) -> Downloaded:
    """Download into one backup storage; the image_bs row says where and how it went."""
    path, reply = backends.backup(bs).download(ctx, image["uuid"], url, deadline)
    ctx.db.update_where("image_bs", "image_uuid = ? AND bs_uuid = ?", (image["uuid"],
                        bs["uuid"]), status="Ready", install_path=path)
    return reply


def add(ctx: Context, uuid: str, row: dict, url: str, bs_uuids: list[str],
        deadline: Deadline) -> None:
    """Download ``url`` into the backup storages named; the image (``row``, its uuid
    ``uuid``) is Ready when one copy is, and gone if none is."""
    storages = [require(ctx, "backup_storage", u, f"backupStorageUuids.{i}")
                for i, u in enumerate(bs_uuids)]
    ctx.db.insert("image", {"uuid": uuid, **row, "url": url, "status": "Downloading"})
    for bs in storages:
        ctx.db.db["image_bs"].insert({"image_uuid": uuid, "bs_uuid": bs["uuid"],
                                      "status": "Downloading"})
    image = ctx.db.get("image", uuid)
    done = []
    for bs in storages:
        try:
            done.append(download_to(ctx, bs, image, url, deadline))
        except ApiError as exc:
            ctx.db.update_where("image_bs", "image_uuid = ? AND bs_uuid = ?",
                                (uuid, bs["uuid"]), status="Failed")
            log.warning("image %s: download into %s failed: %s", row["name"], bs["name"],
                        exc)
            if not done and bs is storages[-1]:
                ctx.db.delete("image", uuid)
                raise ApiError(f"url: {exc}") from None
    first = done[0]
    ctx.db.update("image", uuid, status="Ready", size=first.size,
                  actual_size=first.actual_size, md5=first.md5_sum,
                  format=first.format or row["format"])
