"""The database: migrations once, transactions that roll back, JSON columns."""

import sqlite3

import pytest

from coordinator.db import Database
from coordinator.schema import MIGRATIONS


def test_migrations_apply_once_and_are_recorded(tmp_path):
    path = tmp_path / "z.db"
    db = Database(path)
    versions = [r[0] for r in db.conn().execute("SELECT version FROM schema_version")]
    assert versions == [v for v, _, _ in MIGRATIONS]
    db.insert("zone", {"uuid": "a" * 32, "name": "z"})
    db.close()
    again = Database(path)  # reopening migrates nothing and keeps the rows
    assert again.get("zone", "a" * 32)["name"] == "z"
    assert again.conn().execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(
        MIGRATIONS)


def test_a_failing_transaction_leaves_nothing(tmp_path):
    db = Database(tmp_path / "z.db")
    with pytest.raises(RuntimeError), db.tx():
        db.insert("zone", {"uuid": "b" * 32, "name": "inner"})  # joins the outer one
        raise RuntimeError("boom")
    assert db.find("zone") == []
    with pytest.raises(sqlite3.IntegrityError):
        db.insert("cluster", {"uuid": "c" * 32, "name": "x", "zone_uuid": "nope"})


def test_lists_and_dicts_round_trip_through_json_columns(tmp_path):
    db = Database(tmp_path / "z.db")
    db.insert("zone", {"uuid": "d" * 32, "name": "z"})
    db.insert("l2_network", {"uuid": "e" * 32, "name": "l2", "zone_uuid": "d" * 32,
                             "type": "L2NoVlanNetwork", "physical_interface": "eth0"})
    db.insert("l3_network", {"uuid": "f" * 32, "name": "l3", "zone_uuid": "d" * 32,
                             "l2_network_uuid": "e" * 32, "dns": ["8.8.8.8"]})
    db.update("l3_network", "f" * 32, services=[{"type": "DHCP"}])
    row = db.get("l3_network", "f" * 32)
    assert row["dns"] == ["8.8.8.8"] and row["services"] == [{"type": "DHCP"}]
