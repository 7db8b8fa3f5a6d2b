"""VMs and their NICs: the ``vm`` and ``vm_nic`` tables."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from coordinator.repos.record import Repo, json_column


@dataclass(frozen=True)
class Vm:
    uuid: str
    name: str
    description: str = ""
    zone_uuid: str | None = None
    cluster_uuid: str | None = None
    host_uuid: str | None = None
    last_host_uuid: str | None = None
    image_uuid: str | None = None
    instance_offering_uuid: str | None = None
    root_volume_uuid: str | None = None
    default_l3_network_uuid: str | None = None
    state: str = "Created"
    cpu_num: int | None = None
    cpu_speed: int | None = None
    memory_size: int | None = None
    allocator_strategy: str | None = None
    ha_level: str = ""
    platform: str = "Linux"
    boot_order: list[str] = json_column(lambda: ["HardDisk"])
    iso_uuid: str | None = None
    created: float | None = None
    updated: float | None = None


@dataclass(frozen=True)
class VmNic:
    uuid: str
    vm_uuid: str
    l3_network_uuid: str
    mac: str
    device_id: int
    ip: str | None = None
    netmask: str | None = None
    gateway: str | None = None
    created: float | None = None
    updated: float | None = None


class Vms(Repo[Vm]):
    table = "vm"
    record = Vm

    def on_host(self, host_uuid: str, states: Iterable[str] | None = None) -> list[Vm]:
        """The VMs placed on the host (in one of ``states`` if given)."""
        if states is None:
            return self.where("host_uuid = ?", (host_uuid,))
        states = tuple(states)
        marks = ", ".join("?" * len(states))
        return self.where(f"host_uuid = ? AND state IN ({marks})", (host_uuid, *states))

    def in_state_since(self, state: str, before: float) -> list[Vm]:
        """VMs in ``state`` not changed after ``before`` (the expunger's scan)."""
        return self.where("state = ? AND updated <= ?", (state, before))

    def count_by_host(self, states: Iterable[str]) -> dict[str, int]:
        """How many VMs in one of ``states`` each host has (hosts with none left out)."""
        states = tuple(states)
        marks = ", ".join("?" * len(states))
        return {r[0]: r[1] for r in self.db.conn().execute(
            f"SELECT host_uuid, COUNT(*) FROM vm WHERE state IN ({marks}) GROUP BY host_uuid",
            states)}

    def delete_rows(self, uuid: str) -> None:
        """The VM's row, its root volume's and its system tags'; its data volumes stay,
        detached (its NICs go with it)."""
        with self.db.tx():
            conn = self.db.conn()
            conn.execute("DELETE FROM volume WHERE vm_uuid = ? AND type = 'Root'", (uuid,))
            conn.execute("UPDATE volume SET vm_uuid = NULL, device_id = NULL WHERE "
                         "vm_uuid = ?", (uuid,))
            conn.execute("DELETE FROM system_tag WHERE resource_uuid = ?", (uuid,))
            conn.execute("DELETE FROM vm WHERE uuid = ?", (uuid,))


class VmNics(Repo[VmNic]):
    table = "vm_nic"
    record = VmNic

    def of_vm(self, vm_uuid: str) -> list[VmNic]:
        """The VM's NICs in device order."""
        return self.where("vm_uuid = ? ORDER BY device_id", (vm_uuid,))

    def on_l3(self, l3_uuid: str) -> list[VmNic]:
        return self.where("l3_network_uuid = ?", (l3_uuid,))
