"""Rows as ZStack inventories: camelCase fields, ZStack's names where they differ
(``createDate``, ``primaryStorageUuid``), nested parts (a VM's NICs and volumes).

Each resource type names its table and its Query API; Query conditions can only name
fields listed here, so a condition never becomes SQL of its own.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from pydantic.alias_generators import to_camel

from coordinator.db import Database

RENAMES = {"created": "createDate", "updated": "lastOpDate", "ps_uuid": "primaryStorageUuid",
           "bs_uuid": "backupStorageUuid", "l2_uuid": "l2NetworkUuid"}


def field_name(column: str) -> str:
    return RENAMES.get(column, to_camel(column))


def _date(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Resource:
    table: str
    query_api: str
    hidden: frozenset[str] = frozenset()
    nested: Callable[[Database, dict], dict] | None = None

    def inventory(self, db: Database, row: dict) -> dict:
        inv = {}
        for col, value in row.items():
            if col in self.hidden:
                continue
            inv[field_name(col)] = _date(value) if col in ("created", "updated") else value
        if self.nested:
            inv.update(self.nested(db, row))
        return inv


def _vm_nested(db: Database, row: dict) -> dict:
    nics = db.find("vm_nic", "vm_uuid = ? ORDER BY device_id", (row["uuid"],))
    vols = db.find("volume", "vm_uuid = ? ORDER BY device_id", (row["uuid"],))
    return {"vmNics": [NIC.inventory(db, n) for n in nics],
            "allVolumes": [VOLUME.inventory(db, v) for v in vols]}


def _l3_nested(db: Database, row: dict) -> dict:
    ranges = db.find("ip_range", "l3_network_uuid = ?", (row["uuid"],))
    return {"ipRanges": [IP_RANGE.inventory(db, r) for r in ranges],
            "networkServices": row.get("services") or []}


def _attached(table: str, own: str, other: str, field: str):
    """``{field: [uuids]}`` of the association ``table`` (``own`` column = the row)."""
    def nested(db: Database, row: dict) -> dict:
        rows = db.conn().execute(f"SELECT {other} FROM {table} WHERE {own} = ?",
                                 (row["uuid"],)).fetchall()
        return {field: [r[0] for r in rows]}
    return nested


def _image_nested(db: Database, row: dict) -> dict:
    refs = db.find("image_bs", "image_uuid = ?", (row["uuid"],))
    return {"backupStorageRefs": [{"backupStorageUuid": r["bs_uuid"],
                                   "installPath": r["install_path"], "status": r["status"]}
                                  for r in refs]}


NIC = Resource("vm_nic", "QueryVmNic")
VOLUME = Resource("volume", "QueryVolume")
IP_RANGE = Resource("ip_range", "QueryIpRange")
RESOURCES = [
    Resource("zone", "QueryZone"),
    Resource("cluster", "QueryCluster"),
    Resource("host", "QueryHost", frozenset({"facts"})),
    Resource("primary_storage", "QueryPrimaryStorage", frozenset({"config"}),
             _attached("ps_cluster", "ps_uuid", "cluster_uuid", "attachedClusterUuids")),
    Resource("backup_storage", "QueryBackupStorage", frozenset({"config"}),
             _attached("bs_zone", "bs_uuid", "zone_uuid", "attachedZoneUuids")),
    Resource("l2_network", "QueryL2Network",
             nested=_attached("l2_cluster", "l2_uuid", "cluster_uuid", "attachedClusterUuids")),
    Resource("l3_network", "QueryL3Network", frozenset({"services"}), _l3_nested),
    IP_RANGE,
    Resource("image", "QueryImage", nested=_image_nested),
    Resource("instance_offering", "QueryInstanceOffering"),
    Resource("disk_offering", "QueryDiskOffering"),
    Resource("vm", "QueryVmInstance", nested=_vm_nested),
    NIC,
    VOLUME,
    Resource("volume_snapshot", "QueryVolumeSnapshot"),
    Resource("vip", "QueryVip"),
    Resource("eip", "QueryEip"),
    Resource("system_tag", "QuerySystemTag"),
    Resource("global_config", "QueryGlobalConfig"),
    Resource("job", "QueryJob"),
    Resource("gc_job", "QueryGCJob"),
]
BY_TABLE = {r.table: r for r in RESOURCES}


def inventory(db: Database, table: str, row: dict) -> dict:
    return BY_TABLE[table].inventory(db, row)


def get_inventory(db: Database, table: str, uuid: str) -> dict:
    return inventory(db, table, db.get(table, uuid))
