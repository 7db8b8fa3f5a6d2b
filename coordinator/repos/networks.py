"""L2 and L3 networks, their IP ranges and the addresses in use: ``l2_network``,
``l3_network``, ``ip_range``, ``used_ip``."""

from __future__ import annotations

from dataclasses import dataclass

from coordinator.repos.record import Links, Repo, json_column


@dataclass(frozen=True)
class L2Network:
    uuid: str
    name: str
    zone_uuid: str
    type: str
    physical_interface: str
    description: str = ""
    vlan: int | None = None
    vni: int | None = None
    created: float | None = None
    updated: float | None = None


@dataclass(frozen=True)
class L3Network:
    uuid: str
    name: str
    zone_uuid: str
    l2_network_uuid: str
    description: str = ""
    type: str = "L3BasicNetwork"
    system: int = 0
    dns_domain: str = ""
    dns: list[str] = json_column(list)
    services: list[dict] = json_column(list)
    state: str = "Enabled"
    created: float | None = None
    updated: float | None = None

    def has_service(self, kind: str) -> bool:
        return any(s["type"] == kind for s in self.services or [])


@dataclass(frozen=True)
class IpRange:
    uuid: str
    name: str
    l3_network_uuid: str
    start_ip: str
    end_ip: str
    netmask: str
    gateway: str
    network_cidr: str
    description: str = ""
    created: float | None = None
    updated: float | None = None


@dataclass(frozen=True)
class UsedIp:
    uuid: str
    l3_network_uuid: str
    ip_range_uuid: str
    ip: str
    ip_int: int
    netmask: str | None = None
    gateway: str | None = None
    owner_uuid: str | None = None
    purpose: str = "VmNic"
    created: float | None = None
    updated: float | None = None


class L2Networks(Repo[L2Network]):
    table = "l2_network"
    record = L2Network


class L2Clusters(Links):
    """The clusters each L2 is attached to."""

    table, left, right = "l2_cluster", "l2_uuid", "cluster_uuid"


class L3Networks(Repo[L3Network]):
    table = "l3_network"
    record = L3Network

    def on_l2(self, l2_uuid: str) -> list[L3Network]:
        return self.where("l2_network_uuid = ?", (l2_uuid,))


class IpRanges(Repo[IpRange]):
    table = "ip_range"
    record = IpRange

    def of_l3(self, l3_uuid: str) -> list[IpRange]:
        return self.where("l3_network_uuid = ? ORDER BY start_ip", (l3_uuid,))


class UsedIps(Repo[UsedIp]):
    table = "used_ip"
    record = UsedIp

    def of_l3(self, l3_uuid: str, purpose: str | None = None) -> list[UsedIp]:
        """The L3's addresses in use (for ``purpose`` if given), lowest first."""
        if purpose is None:
            return self.where("l3_network_uuid = ? ORDER BY ip_int", (l3_uuid,))
        return self.where("l3_network_uuid = ? AND purpose = ? ORDER BY ip_int",
                          (l3_uuid, purpose))

    def by_ip(self, l3_uuid: str, ip: str) -> UsedIp | None:
        rows = self.where("l3_network_uuid = ? AND ip = ?", (l3_uuid, ip))
        return rows[0] if rows else None

    def of_owner(self, owner_uuid: str) -> list[UsedIp]:
        return self.where("owner_uuid = ?", (owner_uuid,))

    def in_range(self, range_uuid: str, purpose: str) -> list[UsedIp]:
        return self.where("ip_range_uuid = ? AND purpose = ?", (range_uuid, purpose))

    def ints_between(self, l3_uuid: str, lo: int, hi: int) -> list[int]:
        """The L3's addresses in use from ``lo`` to ``hi`` (as integers), lowest first."""
        return [r[0] for r in self.db.conn().execute(
            "SELECT ip_int FROM used_ip WHERE l3_network_uuid = ? AND ip_int BETWEEN ? AND ? "
            "ORDER BY ip_int", (l3_uuid, lo, hi))]

    def release(self, owner_uuid: str, l3_uuid: str | None = None) -> int:
        """Free the owner's addresses (on ``l3_uuid`` only, if given); how many."""
        where, params = "owner_uuid = ?", (owner_uuid,)
        if l3_uuid:
            where, params = f"{where} AND l3_network_uuid = ?", (owner_uuid, l3_uuid)
        with self.db.tx():
            return self.db.conn().execute(f"DELETE FROM used_ip WHERE {where}",
                                          params).rowcount
