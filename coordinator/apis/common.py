"""What every API handler shapes its reply with."""

from __future__ import annotations

from coordinator.context import Context
from coordinator.inventory import get_inventory


def inventory_reply(ctx: Context, table: str, uuid: str) -> dict:
    return {"inventory": get_inventory(ctx.db, table, uuid)}
