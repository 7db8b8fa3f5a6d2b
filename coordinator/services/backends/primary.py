"""What the flows need of a primary storage, whatever its type: the base class refuses
each operation with an error naming the storage and its type, so a type that does not
(yet) do something says so instead of doing something else."""

from __future__ import annotations

from coordinator.api import ApiError
from coordinator.clients.endpoint import Call
from coordinator.clients.transport import Client
from coordinator.context import Context
from coordinator.jobs import Deadline
from coordinator.repos.images import ImageCopies
from coordinator.services.hosts import kvm


class PrimaryStorage:
    type = ""
    shared = False
    """Its volumes are usable from every host of its clusters (live migration, HA)."""
    per_host = False
    """Its volumes and image cache live on one host (LocalStorageMigrateVolume, ISOs)."""
    snapshots = False
    """It takes volume snapshots."""

    def __init__(self, row: dict):
        self.row = row

    def unsupported(self, what: str) -> ApiError:
        return ApiError(f"primary storage {self.row['name']}: {what} on {self.type} primary "
                        "storage is not supported by this coordinator yet")

    def agent(self, ctx: Context) -> Client:
        """The client of the storage's own agent (not a host's)."""
        raise self.unsupported("a storage agent")

    def call(self, ctx: Context, path: str, body: dict) -> dict:
        """A command built earlier (a GC job's path and body) for the storage's agent."""
        return self.agent(ctx).run(Call(path, body))

    def prepare_host(self, ctx: Context, host: dict) -> None:
        """What a host needs before it runs a VM with volumes here."""
        raise self.unsupported("preparing a host")

    def image_sources(self, ctx: Context, image: dict) -> list[dict]:
        """The backup storages a root volume's image can come from here, with the image's
        path there (``image_path``)."""
        return []

    def cache_host(self, host: dict) -> str:
        """Whose image cache a VM on ``host`` uses: '' for the storage's own."""
        return ""

    def cache_image(self, ctx: Context, host: dict, image: dict, bs: dict,
                    deadline: Deadline) -> str:
        """Copy ``image`` from backup storage ``bs`` into the cache; its path there."""
        raise self.unsupported("an image cache")

    def root_volume_path(self, volume_uuid: str) -> str:
        raise self.unsupported("root volumes")

    def create_root_volume(self, ctx: Context, host: dict, cache: str, image: dict,
                           path: str, size: int) -> None:
        """A copy-on-write volume at ``path`` on the cached image."""
        raise self.unsupported("root volumes")

    def root_volume_fields(self, host: dict) -> dict:
        """The volume row's format and host of a root volume made on ``host``."""
        raise self.unsupported("root volumes")

    def create_data_volume(self, ctx: Context, volume: dict) -> str:
        """An empty data volume; its path."""
        raise ApiError(f"primaryStorageUuid: data volumes on {self.row['type']} are not "
                       "supported by this coordinator yet")

    def delete_command(self, install_path: str) -> tuple[Call, bool]:
        """(the command, on a host) that deletes a volume: sent to the volume's host, or
        to the storage's agent."""
        raise self.unsupported("deleting volumes")

    def delete_volume(self, ctx: Context, install_path: str, host: dict | None) -> None:
        call, on_host = self.delete_command(install_path)
        if not on_host:
            self.agent(ctx).run(call)
        elif host is not None:
            kvm(ctx, host).run(call)

    def copy_to_host(self, ctx: Context, volume: dict, source: dict, dest: dict,
                     vm_uuid: str | None, deadline: Deadline) -> None:
        """Copy a volume kept on host ``source`` to host ``dest``, at the same path."""
        raise self.unsupported("moving volumes between hosts")

    def volume_to(self, volume: dict) -> dict:
        """The VolumeTO of ``volume`` for kvmagent's /vm/start and hot-plug."""
        raise self.unsupported("volumes")

    def ha_access(self) -> dict:
        """How a host's agent reaches the storage's heartbeat itself (self-fencer)."""
        raise self.unsupported("VM HA")

    def snapshot_command(self, op: str, snapshot_path: str) -> Call:
        """A snapshot operation (create, delete, rollback), to send or keep as a GC job."""
        raise self.unsupported("volume snapshots")

    def snapshot(self, ctx: Context, op: str, snapshot_path: str) -> int:
        """Run a snapshot operation; the size of the volume as the storage reports it (0
        if it does not say)."""
        raise self.unsupported("volume snapshots")


def image_copies(ctx: Context, image: dict, where: str, params: tuple) -> list[dict]:
    """The backup storages matching ``where`` (on ``b``) with a Ready copy of ``image``,
    each with its path there as ``image_path``."""
    rows = ImageCopies(ctx.db).ready_on(image["uuid"], where, params)
    return [{**ctx.db.get("backup_storage", uuid), "image_path": path} for uuid, path in rows]


class SharedMountPoint(PrimaryStorage):
    """A shared file system mounted on every host (ZStack's SharedMountPoint): not built
    yet; every operation is refused with that said."""

    type = "SharedMountPoint"
