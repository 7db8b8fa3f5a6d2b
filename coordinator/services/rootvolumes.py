"""What VM flows need of primary storage, whatever its type (:mod:`.backends` does each
type's part): the host prepared for it, the image in its cache (made once however many
VMs ask at once), a root volume from that cache, a volume's VolumeTO, and deleting a
volume."""

from __future__ import annotations

import logging

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.db import new_uuid
from coordinator.jobs import Deadline
from coordinator.repos.images import ImageCaches
from coordinator.services import backends

log = logging.getLogger(__name__)


def prepare_host(ctx: Context, ps: dict, host: dict) -> None:
    """What a host needs before it runs a VM with volumes on ``ps``."""
    backends.primary(ps).prepare_host(ctx, host)


def can_hold(ctx: Context, ps: dict, image: dict) -> bool:
    """Can ``ps`` take a root volume of ``image``?"""
    return bool(backends.primary(ps).image_sources(ctx, image))


def image_cache(ctx: Context, ps: dict, host: dict, image: dict, deadline: Deadline) -> str:
    """The image in ``ps``'s cache (per host for local storage)."""
    backend = backends.primary(ps)
    host_key = backend.cache_host(host)
    with ctx.locks.hold(f"imagecache:{ps['uuid']}:{host_key}:{image['uuid']}"):
        cached = ctx.db.find("image_cache", "ps_uuid = ? AND host_uuid = ? AND image_uuid = ? "
                             "AND status = 'Ready'", (ps["uuid"], host_key, image["uuid"]))
        if cached:
            return cached[0]["install_path"]
        sources = backend.image_sources(ctx, image)
        if not sources:
            raise ApiError(f"image {image['name']} is on no backup storage primary storage "
                           f"{ps['name']} can take it from (Ceph: a Ceph backup storage of "
                           "the same fsid; local: an SFTP backup storage of the zone)")
        deadline.check("image cache")
        path = backend.cache_image(ctx, host, image, sources[0], deadline)
        with ctx.db.tx():
            ImageCaches(ctx.db).forget(ps["uuid"], host_key, image["uuid"])
            ctx.db.insert("image_cache", {"uuid": new_uuid(), "ps_uuid": ps["uuid"],
                                          "host_uuid": host_key, "image_uuid": image["uuid"],
                                          "install_path": path, "status": "Ready",
                                          "size": image["size"]})
        log.info("image %s cached in primary storage %s%s at %s", image["name"], ps["name"],
                 f" on host {host['name']}" if host_key else "", path)
        return path


def create_root_volume(ctx: Context, ps: dict, host: dict, image: dict, volume_uuid: str,
                       size: int, deadline: Deadline) -> str:
    """A copy-on-write volume on the cached image (grown to ``size`` where the storage
    can); its path."""
    cache = image_cache(ctx, ps, host, image, deadline)
    path = root_volume_path(ps, volume_uuid)
    backends.primary(ps).create_root_volume(ctx, host, cache, image, path, size)
    return path


def root_volume_path(ps: dict, volume_uuid: str) -> str:
    """Where :func:`create_root_volume` puts a volume (for an undo that never saw it)."""
    return backends.primary(ps).root_volume_path(volume_uuid)


def delete_volume(ctx: Context, ps: dict, install_path: str, host: dict | None) -> None:
    backends.primary(ps).delete_volume(ctx, install_path, host)


def volume_to(ps: dict, volume: dict) -> dict:
    """The VolumeTO of ``volume`` for kvmagent's /vm/start."""
    return backends.primary(ps).volume_to(volume)
