"""Query APIs (``QueryVmInstance name=vm1 state=Running fields=uuid,name``).

A condition names an inventory field (checked against the table's columns: never SQL
of its own), an operator and a value; values are always bound parameters.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from coordinator.api import ApiError, ApiMessage, Apis
from coordinator.db import Database
from coordinator.inventory import RESOURCES, Resource, field_name

Op = Literal["=", "!=", ">", ">=", "<", "<=", "~=", "!~=", "?=", "!?=", "is null",
             "not null"]
OPS = ("!?=", "?=", "!~=", "~=", "!=", ">=", "<=", "=", ">", "<")  # longest first
_SQL = {"=": "= ?", "!=": "!= ?", ">": "> ?", ">=": ">= ?", "<": "< ?", "<=": "<= ?",
        "~=": "LIKE ?", "!~=": "NOT LIKE ?", "is null": "IS NULL", "not null": "IS NOT NULL"}


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    op: Op
    value: str | int | float | list[str | int | float] | None = None


class QueryMsg(ApiMessage):
    conditions: list[Condition] = []
    fields: list[str] = []
    limit: int = Field(1000, ge=0, le=100_000)
    start: int = Field(0, ge=0)
    sort_by: str | None = None
    sort_direction: Literal["asc", "desc"] = "asc"
    count: bool = False
    reply_with_count: bool = False


def parse_condition(text: str) -> Condition:
    """``name=vm1``, ``memorySize>=1024``, ``name~=web%``, ``uuid?=a,b`` (in)."""
    for op in OPS:
        name, sep, value = text.partition(op)
        if sep and name:
            values: str | list[str] = value.split(",") if op in ("?=", "!?=") else value
            return Condition(name=name, op=op, value=values)
    raise ValueError(f"not a condition (name=value, name!=value, name~=pattern%, "
                     f"name?=a,b ...): {text!r}")


def columns(db: Database, table: str) -> dict[str, str]:
    """Inventory field -> column, for plain (non-JSON) columns."""
    rows = db.conn().execute(f"PRAGMA table_info({table})").fetchall()
    return {field_name(r[1]): r[1] for r in rows if not r[1].endswith("_json")}


def run_query(db: Database, res: Resource, msg: QueryMsg) -> dict:
    cols = columns(db, res.table)

    def column(name: str, where: str) -> str:
        if name not in cols or cols[name] in res.hidden:
            known = sorted(f for f, c in cols.items() if c not in res.hidden)
            raise ApiError(f"{where}: {res.query_api} has no field {name!r} (fields: "
                           f"{', '.join(known)})")
        return cols[name]

    clauses, params = [], []
    for i, c in enumerate(msg.conditions):
        col = column(c.name, f"conditions.{i}.name")
        if c.op in ("?=", "!?="):
            values = c.value if isinstance(c.value, list) else [c.value]
            marks = ", ".join("?" * len(values))
            clauses.append(f"{col} {'NOT ' if c.op == '!?=' else ''}IN ({marks})")
            params.extend(values)
        else:
            if isinstance(c.value, list):
                raise ApiError(f"conditions.{i}.value: a list needs ?= or !?=")
            clauses.append(f"{col} {_SQL[c.op]}")
            if c.op not in ("is null", "not null"):
                params.append(c.value)
    where = " AND ".join(clauses) or "1"
    total = db.conn().execute(f"SELECT COUNT(*) FROM {res.table} WHERE {where}",
                              params).fetchone()[0]
    if msg.count:
        return {"total": total}
    order = column(msg.sort_by, "sortBy") if msg.sort_by else "created"
    rows = db.find(res.table, f"{where} ORDER BY {order} {msg.sort_direction.upper()} "
                   "LIMIT ? OFFSET ?", (*params, msg.limit, msg.start))
    inventories = [res.inventory(db, r) for r in rows]
    if msg.fields:
        for i, f in enumerate(msg.fields):
            if f not in (inventories[0] if inventories else cols):
                raise ApiError(f"fields.{i}: {res.query_api} has no field {f!r}")
        inventories = [{f: inv.get(f) for f in msg.fields} for inv in inventories]
    reply: dict = {"inventories": inventories}
    if msg.reply_with_count:
        reply["total"] = total
    return reply


def register(apis: Apis, db: Database) -> None:
    for res in RESOURCES:
        _register_one(apis, db, res)


def _register_one(apis: Apis, db: Database, res: Resource) -> None:
    def query(msg: QueryMsg, _ctx=None) -> dict:
        return run_query(db, res, msg)

    query.__doc__ = f"Query {res.table.replace('_', ' ')}s by conditions on their fields."
    apis.register(res.query_api)(query)

