"""The coordinator's database: one sqlite file, WAL, migrated on open, one writer at a time.

sqlite serialises writers anyway; taking the write lock in Python first (and ``BEGIN
IMMEDIATE``) means a transaction that reads capacity or free IPs and then writes can
never interleave with another one: parallel VM creations cannot over-commit a host or
hand out one IP twice. Readers never wait (WAL). Each thread has its own connection.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from coordinator.schema import MIGRATIONS

log = logging.getLogger(__name__)


def new_uuid() -> str:
    return uuidlib.uuid4().hex


def now() -> float:
    return round(time.time(), 3)


class NotFound(LookupError):
    pass


class Database:
    def __init__(self, path: Path | str):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write = threading.RLock()
        self._depth = threading.local()
        self.migrate()

    # -- connections --------------------------------------------------------------------
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        """The sqlite-utils view of this thread's connection."""
        wrapped = getattr(self._local, "db", None)
        if wrapped is None:
            wrapped = self._local.db = sqlite_utils.Database(self.conn())
        return wrapped

    @contextmanager
    def tx(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction (nested calls join the outer one)."""
        with self._write:
            depth = getattr(self._depth, "n", 0)
            self._depth.n = depth + 1
            conn = self.conn()
            if depth == 0:
                conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if depth == 0:
                    conn.execute("ROLLBACK")
                raise
            else:
                if depth == 0:
                    conn.execute("COMMIT")
            finally:
                self._depth.n = depth

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            self._local.db = None

    # -- schema -------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply the migrations this file has not seen, each in its own transaction."""
        conn = self.conn()
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                     "(version INTEGER PRIMARY KEY, name TEXT, applied REAL)")
        done = {r[0] for r in conn.execute("SELECT version FROM schema_version")}
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            with self.tx():
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                             (version, name, now()))
            log.info("database %s: migration %d (%s) applied", self.path, version, name)
        return max([v for v, _, _ in MIGRATIONS], default=0)

    # -- rows ---------------------------------------------------------------------------
    def get(self, table: str, uuid: str) -> dict:
        row = self.conn().execute(f"SELECT * FROM {table} WHERE uuid = ?",
                                  (uuid,)).fetchone()
        if row is None:
            raise NotFound(f"no {table} with uuid {uuid}")
        return decode(dict(row))

    def find(self, table: str, where: str = "", params: tuple = ()) -> list[dict]:
        sql = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "")
        return [decode(dict(r)) for r in self.conn().execute(sql, params)]

    def insert(self, table: str, row: dict[str, Any]) -> dict:
        row = {"created": now(), "updated": now(), **row}
        with self.tx() as db:
            db[table].insert(encode(row))
        return row

    def update(self, table: str, uuid: str, **changes: Any) -> None:
        with self.tx() as db:
            db[table].update(uuid, encode({**changes, "updated": now()}))

    def update_where(self, table: str, where: str, params: tuple, **changes: Any) -> int:
        """Column names come from code, never from a request; values are parameters."""
        enc = encode({**changes, "updated": now()})
        sets = ", ".join(f"{k} = ?" for k in enc)
        with self.tx():
            cur = self.conn().execute(f"UPDATE {table} SET {sets} WHERE {where}",
                                      (*enc.values(), *params))
        return cur.rowcount

    def delete(self, table: str, uuid: str) -> None:
        with self.tx():
            self.conn().execute(f"DELETE FROM {table} WHERE uuid = ?", (uuid,))


def encode(row: dict[str, Any]) -> dict[str, Any]:
    """Lists and dicts are stored as JSON text in ``<name>_json`` columns."""
    out = {}
    for k, v in row.items():
        if isinstance(v, list | dict):
            out[k if k.endswith("_json") else f"{k}_json"] = json.dumps(v)
        else:
            out[k] = v
    return out


def decode(row: dict[str, Any]) -> dict[str, Any]:
    """JSON columns (named ``*_json`` in the schema) come back as Python values."""
    out = {}
    for k, v in row.items():
        if k.endswith("_json"):
            out[k[:-5]] = json.loads(v) if v else None
        else:
            out[k] = v
    return out


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";\n") if s.strip()]
