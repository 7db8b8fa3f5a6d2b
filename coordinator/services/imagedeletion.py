"""Deleting images by the deletion policy (ZStack 1.0), copy by copy: DeleteImage
``{uuid, backupStorageUuids?}`` (default: every backup storage the image is on) follows
``image/deletionPolicy``. Direct deletes the bits there and drops those copies; the
image leaves the inventory with its last copy. Delay (the default) and Never mark the
copies Deleted and keep their bits; an image whose copies are all Deleted is Deleted
itself, so no VM, ISO or image cache is made from it (a Deleted copy is never a source).
RecoverImage brings copies, and the image, back to Ready; ExpungeImage deletes the bits
of Deleted copies now; the expunger does so ``image/expungePeriod`` seconds after the
delete (checked every ``image/expungeInterval``; never under Never).

Copies already in a primary storage's image cache stay: the root volumes cloned from
the cache depend on it, and it goes with its primary storage.
"""

from __future__ import annotations

import logging

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.repos.images import ImageCopies
from coordinator.services import backends, expunger, gc
from coordinator.services.lookup import require

log = logging.getLogger(__name__)
BS_UUIDS = "backupStorageUuids"


def _copies(ctx: Context, image: dict, bs_uuids: list[str] | None,
            status: str | None = None) -> list[dict]:
    """The image's copies (image_bs rows) on ``bs_uuids``, each of which must hold one
    (in ``status`` if given: an error naming the field otherwise); without ``bs_uuids``
    every copy (in ``status``)."""
    refs = {r["bs_uuid"]: r for r in ctx.db.find("image_bs", "image_uuid = ?",
                                                  (image["uuid"],))}
    if bs_uuids is None:
        return [r for r in refs.values() if status in (None, r["status"])]
    out: dict[str, dict] = {}
    for i, uuid in enumerate(bs_uuids):
        ref = refs.get(uuid)
        if ref is None:
            raise ApiError(f"{BS_UUIDS}.{i}: image {image['name']} is not on backup storage "
                           f"{uuid}")
        if status not in (None, ref["status"]):
            bs = ctx.db.get("backup_storage", uuid)
            raise ApiError(f"{BS_UUIDS}.{i}: image {image['name']} is {ref['status']} on "
                           f"backup storage {bs['name']}, not {status}")
        out[uuid] = ref
    return list(out.values())


def _mark(ctx: Context, image: dict, refs: list[dict], status: str) -> None:
    for ref in refs:
        ctx.db.update_where("image_bs", "image_uuid = ? AND bs_uuid = ?",
                            (image["uuid"], ref["bs_uuid"]), status=status)


def _settle(ctx: Context, image: dict) -> bool:
    """The image's status from its copies: Deleted when all are, Ready again when one
    is; gone with its last copy. Whether it is still in the inventory."""
    statuses = {r["status"] for r in ctx.db.find("image_bs", "image_uuid = ?",
                                                  (image["uuid"],))}
    if not statuses:
        ctx.db.delete("image", image["uuid"])
        log.info("image %s (%s) expunged: no copy left", image["name"], image["uuid"])
        return False
    if statuses == {"Deleted"}:
        ctx.db.update("image", image["uuid"], status="Deleted")
    elif image["status"] == "Deleted" and "Ready" in statuses:
        ctx.db.update("image", image["uuid"], status="Ready")
    return True


def _expunge(ctx: Context, image: dict, refs: list[dict]) -> bool:
    """Delete the bits of ``refs`` through their backup storage's agent (a GC job while it
    is unreachable), each copy's row right after (a refusal halfway leaves the rest as
    they were)."""
    for ref in refs:
        bs = ctx.db.get("backup_storage", ref["bs_uuid"])
        path = ref["install_path"]
        if path:
            call = backends.backup(bs).delete_command(path)
            gc.storage_call(ctx, bs, "bs", call.path, call.body,
                            f"delete image {image['uuid']} from {bs['name']}")
        ImageCopies(ctx.db).delete(image["uuid"], ref["bs_uuid"])
        log.info("image %s (%s) expunged from backup storage %s", image["name"],
                 image["uuid"], bs["name"])
    return _settle(ctx, ctx.db.get("image", image["uuid"]))


def _expunge_deleted(ctx: Context, uuid: str, bs_uuids: list[str] | None,
                     timeout: float = -1) -> bool:
    with ctx.locks.hold(f"image:{uuid}", timeout=timeout):
        image = ctx.db.get("image", uuid)
        refs = _copies(ctx, image, bs_uuids, "Deleted")
        if not refs:
            raise ApiError(f"imageUuid: image {image['name']} has no Deleted copy; delete it "
                           "first")
        return _expunge(ctx, image, refs)


def _due(ctx: Context, before: float) -> list[dict]:
    """Images with copies Deleted at or before ``before``, and those copies."""
    due: dict[str, list[str]] = {}
    for copy in ImageCopies(ctx.db).in_status_since("Deleted", before):
        due.setdefault(copy.image_uuid, []).append(copy.bs_uuid)
    return [{"uuid": image, "bs_uuids": copies} for image, copies in due.items()]


def expunge_due(ctx: Context) -> int:
    """Expunge the Deleted copies whose period is over (not under policy Never); the
    number of images concerned."""
    return expunger.expunge_due(
        ctx, "image", lambda before: _due(ctx, before),
        lambda row: _expunge_deleted(ctx, row["uuid"], row["bs_uuids"], timeout=0))


def delete(ctx: Context, image_uuid: str, bs_uuids: list[str] | None) -> bool:
    """Delete an image from backup storages (default: all) as image/deletionPolicy says;
    whether it is still in the inventory."""
    image = require(ctx, "image", image_uuid, "uuid")
    policy = expunger.policy(ctx, "image")
    with ctx.locks.hold(f"image:{image['uuid']}"):
        image = ctx.db.get("image", image["uuid"])
        refs = _copies(ctx, image, bs_uuids)
        if any(r["status"] == "Downloading" for r in refs):
            raise ApiError(f"uuid: image {image['name']} is still downloading")
        if policy == "Direct":
            return _expunge(ctx, image, refs)
        # a copy without bits (a failed download) has nothing to keep
        _mark(ctx, image, [r for r in refs if r["install_path"]], "Deleted")
        kept = _expunge(ctx, image, [r for r in refs if not r["install_path"]])
    log.info("image %s (%s) deleted from %d backup storage(s) (%s: recoverable)",
             image["name"], image["uuid"], len(refs), policy)
    return kept


def recover(ctx: Context, image_uuid: str, bs_uuids: list[str] | None) -> bool:
    """Deleted copies of an image (default: all) back to Ready, and the image."""
    image = require(ctx, "image", image_uuid, "imageUuid")
    with ctx.locks.hold(f"image:{image['uuid']}"):
        image = ctx.db.get("image", image["uuid"])
        refs = _copies(ctx, image, bs_uuids, "Deleted")
        if not refs:
            raise ApiError(f"imageUuid: image {image['name']} is {image['status']} and "
                           "has no Deleted copy")
        _mark(ctx, image, refs, "Ready")
        return _settle(ctx, image)


def expunge_deleted(ctx: Context, image_uuid: str, bs_uuids: list[str] | None) -> bool:
    """Delete the bits of Deleted copies of an image (default: all) now; whether the
    image is still in the inventory."""
    require(ctx, "image", image_uuid, "imageUuid")
    return _expunge_deleted(ctx, image_uuid, bs_uuids)
