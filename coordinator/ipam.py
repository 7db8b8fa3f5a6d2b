"""IP addresses of L3 networks: allocated inside the database's write transaction, so
parallel VM creations never get one IP twice (the UNIQUE constraint is the backstop).

The lowest free address of the L3's ranges is taken (ZStack's first-available
strategy): predictable for operators reading a DHCP hosts file, and cheap.
"""

from __future__ import annotations

import ipaddress

from coordinator.api import ApiError
from coordinator.db import Database, new_uuid, now
from coordinator.repos.networks import UsedIps


def ip_int(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


def allocate(db: Database, l3_uuid: str, owner: str, purpose: str = "VmNic",
             wanted: str | None = None) -> dict:
    """A ``used_ip`` row for ``owner``: ``wanted`` (a ``staticIp::`` tag) or the lowest
    free address."""
    with db.tx():
        ranges = db.find("ip_range", "l3_network_uuid = ? ORDER BY start_ip", (l3_uuid,))
        if not ranges:
            raise ApiError(f"l3NetworkUuid: L3 network {l3_uuid} has no IP range")
        if wanted is not None:
            w = ip_int(wanted)
            rng = next((r for r in ranges if ip_int(r["start_ip"]) <= w <= ip_int(r["end_ip"])),
                       None)
            if rng is None:
                raise ApiError(f"staticIp: {wanted} is in no IP range of L3 network {l3_uuid}")
            if db.find("used_ip", "l3_network_uuid = ? AND ip = ?", (l3_uuid, wanted)):
                raise ApiError(f"staticIp: {wanted} of L3 network {l3_uuid} is in use")
            return _take(db, l3_uuid, rng, wanted, owner, purpose)
        for rng in ranges:
            lo, hi = ip_int(rng["start_ip"]), ip_int(rng["end_ip"])
            used = UsedIps(db).ints_between(l3_uuid, lo, hi)
            candidate = lo
            for u in used:
                if u != candidate:
                    break
                candidate += 1
            if candidate <= hi:
                return _take(db, l3_uuid, rng, str(ipaddress.IPv4Address(candidate)), owner,
                             purpose)
        raise ApiError(f"l3NetworkUuid: L3 network {l3_uuid} has no free IP address left")


def _take(db: Database, l3_uuid: str, rng: dict, ip: str, owner: str, purpose: str) -> dict:
    row = {"uuid": new_uuid(), "l3_network_uuid": l3_uuid, "ip_range_uuid": rng["uuid"],
           "ip": ip, "ip_int": ip_int(ip), "netmask": rng["netmask"],
           "gateway": rng["gateway"], "owner_uuid": owner, "purpose": purpose,
           "created": now(), "updated": now()}
    db.db["used_ip"].insert(row)
    return row


def release(db: Database, owner: str, l3_uuid: str | None = None) -> int:
    return UsedIps(db).release(owner, l3_uuid)
