"""KVM hosts: the ``host`` table."""

from __future__ import annotations

from dataclasses import dataclass

from coordinator.repos.record import Repo, json_column


@dataclass(frozen=True)
class Host:
    uuid: str
    name: str
    zone_uuid: str
    cluster_uuid: str
    management_ip: str
    agent_port: int = 7070
    description: str = ""
    hypervisor_type: str = "KVM"
    state: str = "Enabled"
    status: str = "Connecting"
    cpu_num: int = 0
    cpu_speed: int = 0
    total_memory: int = 0
    reserved_memory: int = 0
    allocated_cpu: int = 0
    allocated_memory: int = 0
    missed_pings: int = 0
    last_ping: float | None = None
    last_error: str = ""
    facts: dict | None = json_column()
    created: float | None = None
    updated: float | None = None

    @property
    def agent_url(self) -> str:
        return f"http://{self.management_ip}:{self.agent_port}"


class Hosts(Repo[Host]):
    table = "host"
    record = Host

    def all(self) -> list[Host]:
        return self.where()

    def by_management_ip(self, ip: str) -> Host | None:
        rows = self.where("management_ip = ?", (ip,))
        return rows[0] if rows else None

    def in_cluster(self, cluster_uuid: str, status: str | None = None,
                   exclude: str | None = None) -> list[Host]:
        """The cluster's hosts (in ``status`` if given, but ``exclude``), by name."""
        where, params = "cluster_uuid = ?", [cluster_uuid]
        if status is not None:
            where, params = f"{where} AND status = ?", [*params, status]
        if exclude is not None:
            where, params = f"{where} AND uuid != ?", [*params, exclude]
        return self.where(f"{where} ORDER BY name", tuple(params))

    def with_status(self, status: str) -> list[Host]:
        return self.where("status = ?", (status,))

    def take_capacity(self, uuid: str, cpu: int, memory: int) -> None:
        """Add to the host's allocated CPU and memory (the caller checked they fit)."""
        with self.db.tx():
            self.db.conn().execute("UPDATE host SET allocated_cpu = allocated_cpu + ?, "
                                   "allocated_memory = allocated_memory + ? WHERE uuid = ?",
                                   (cpu, memory, uuid))

    def release_capacity(self, uuid: str, cpu: int, memory: int) -> None:
        """Take back from the host's allocated CPU and memory (never below 0)."""
        with self.db.tx():
            self.db.conn().execute(
                "UPDATE host SET allocated_cpu = MAX(0, allocated_cpu - ?), allocated_memory "
                "= MAX(0, allocated_memory - ?) WHERE uuid = ?", (cpu, memory, uuid))
