"""Volumes: the ``volume`` table (root and data volumes)."""

from __future__ import annotations

from dataclasses import dataclass

from coordinator.repos.record import Repo


@dataclass(frozen=True)
class Volume:
    uuid: str
    name: str
    type: str
    description: str = ""
    vm_uuid: str | None = None
    ps_uuid: str | None = None
    host_uuid: str | None = ""
    disk_offering_uuid: str | None = None
    root_image_uuid: str | None = None
    format: str | None = None
    install_path: str | None = None
    size: int = 0
    actual_size: int = 0
    device_id: int | None = None
    status: str = "Creating"
    state: str = "Enabled"
    created: float | None = None
    updated: float | None = None


class Volumes(Repo[Volume]):
    table = "volume"
    record = Volume

    def of_vm(self, vm_uuid: str, status: str | None = None) -> list[Volume]:
        """The VM's volumes in device order (in ``status`` if given)."""
        if status is None:
            return self.where("vm_uuid = ? ORDER BY device_id", (vm_uuid,))
        return self.where("vm_uuid = ? AND status = ? ORDER BY device_id", (vm_uuid, status))

    def on_storage(self, ps_uuid: str, but_status: str) -> list[Volume]:
        """The volumes on a primary storage, except those in ``but_status``."""
        return self.where("ps_uuid = ? AND status != ?", (ps_uuid, but_status))

    def in_status_since(self, status: str, before: float) -> list[Volume]:
        """Volumes in ``status`` not changed after ``before`` (the expunger's scan)."""
        return self.where("status = ? AND updated <= ?", (status, before))
