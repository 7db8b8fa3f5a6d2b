"""Row look-ups every service needs, with errors that name the API field."""

from __future__ import annotations

from coordinator.api import ApiError
from coordinator.context import Context
from coordinator.db import NotFound

KINDS = {"zone": "zone", "cluster": "cluster", "host": "host",
         "primary_storage": "primary storage", "backup_storage": "backup storage",
         "l2_network": "L2 network", "l3_network": "L3 network", "ip_range": "IP range",
         "image": "image", "instance_offering": "instance offering",
         "disk_offering": "disk offering", "vm": "VM", "volume": "volume",
         "volume_snapshot": "volume snapshot"}


def require(ctx: Context, table: str, uuid: str, field: str) -> dict:
    """The row, or an error naming the API field that named it."""
    try:
        return ctx.db.get(table, uuid)
    except NotFound:
        raise ApiError(f"{field}: no {KINDS.get(table, table)} with uuid {uuid}") from None


def tags(msg_tags: list[str], prefix: str) -> list[str]:
    """The values of system tags ``<prefix>::<value>``."""
    return [t.split("::", 1)[1] for t in msg_tags if t.startswith(prefix + "::")]
