"""The repositories' base: rows (decoded by :mod:`coordinator.db`, JSON columns as
Python values) into frozen dataclasses, and the reads and writes every table with a
``uuid`` key shares. A table group's own queries live in its module."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from coordinator.db import Database

T = TypeVar("T")


def from_row(record: type[T], row: Mapping[str, Any]) -> T:
    """A ``record`` of a decoded row; columns it does not declare are left out (a later
    migration may add some before a record needs them)."""
    names = {f.name for f in dataclasses.fields(record)}
    return record(**{k: v for k, v in row.items() if k in names})


def json_column(factory: Callable[[], Any] | None = None) -> Any:
    """A field kept as JSON in the ``<name>_json`` column (``factory``: its default;
    without one, ``None``)."""
    default = {"default_factory": factory} if factory else {"default": None}
    return dataclasses.field(metadata={"json": True}, **default)


def to_row(record: object) -> dict[str, Any]:
    """A record as the row :meth:`Database.insert` takes (it encodes lists and dicts)."""
    return columns(type(record), dataclasses.asdict(record))


def columns(record: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values by column name: a JSON field's is ``<name>_json``, even when ``None``
    (:func:`coordinator.db.encode` renames only lists and dicts)."""
    fields = {f.name: f for f in dataclasses.fields(record)}
    unknown = set(values) - fields.keys()
    if unknown:
        raise TypeError(f"{record.__name__} has no field {', '.join(sorted(unknown))}")
    return {f"{k}_json" if fields[k].metadata.get("json") else k: v
            for k, v in values.items()}


class Repo(Generic[T]):
    """The rows of ``table`` as ``record`` instances."""

    table: ClassVar[str]
    record: ClassVar[type]

    def __init__(self, db: Database):
        self.db = db

    def get(self, uuid: str) -> T:
        """The record, or :class:`coordinator.db.NotFound`."""
        return from_row(self.record, self.db.get(self.table, uuid))

    def find(self, uuid: str) -> T | None:
        rows = self.where("uuid = ?", (uuid,))
        return rows[0] if rows else None

    def where(self, where: str = "", params: tuple = ()) -> list[T]:
        """Records matching ``where`` (SQL of this package only; values as ``params``)."""
        return [from_row(self.record, r) for r in self.db.find(self.table, where, params)]

    def insert(self, record: T) -> None:
        """Insert; ``created`` and ``updated`` left ``None`` are stamped now."""
        row = to_row(record)
        self.db.insert(self.table, {k: v for k, v in row.items()
                                    if v is not None or k not in ("created", "updated")})

    def update(self, uuid: str, **changes: Any) -> None:
        """Set columns by their record field names (``updated`` is stamped)."""
        self.db.update(self.table, uuid, **columns(self.record, changes))

    def delete(self, uuid: str) -> None:
        self.db.delete(self.table, uuid)


class Links:
    """A table that links two kinds of row by their uuids (``l2_cluster``,
    ``ps_cluster``, ``bs_zone``): ``left`` is attached to ``right`` once at most."""

    table: ClassVar[str]
    left: ClassVar[str]
    right: ClassVar[str]

    def __init__(self, db: Database):
        self.db = db

    def of(self, left_uuid: str) -> set[str]:
        """The uuids ``left_uuid`` is attached to."""
        return {r[0] for r in self.db.conn().execute(
            f"SELECT {self.right} FROM {self.table} WHERE {self.left} = ?", (left_uuid,))}

    def attach(self, left_uuid: str, right_uuid: str) -> None:
        """Attach (attached already is fine)."""
        with self.db.tx():
            self.db.conn().execute(f"INSERT OR IGNORE INTO {self.table} ({self.left}, "
                                   f"{self.right}) VALUES (?, ?)", (left_uuid, right_uuid))

    def detach(self, left_uuid: str, right_uuid: str) -> None:
        with self.db.tx():
            self.db.conn().execute(f"DELETE FROM {self.table} WHERE {self.left} = ? AND "
                                   f"{self.right} = ?", (left_uuid, right_uuid))
