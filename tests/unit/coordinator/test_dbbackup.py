"""zfleet dump-db / restore-db: consistent online backups under concurrent writes."""

import sqlite3
import threading

import pytest

from coordinator.cli import main as zfleet
from coordinator.db import Database, new_uuid


def test_a_backup_under_concurrent_writes_restores_to_a_consistent_database(tmp_path):
    db = Database(tmp_path / "zfleet.db")
    stop, wrote = threading.Event(), threading.Event()

    def write_pairs() -> None:  # each transaction: a zone and its cluster, never one alone
        local = Database(tmp_path / "zfleet.db")
        while not stop.is_set():
            with local.tx():
                zone = new_uuid()
                local.insert("zone", {"uuid": zone, "name": "z"})
                local.insert("cluster", {"uuid": new_uuid(), "name": "c", "zone_uuid": zone})
            wrote.set()

    writer = threading.Thread(target=write_pairs)
    writer.start()
    assert wrote.wait(30), "the writer committed nothing"  # on a loaded machine it may lag
    try:
        backups = tmp_path / "backups"
        for i in range(3):
            assert zfleet(["dump-db", "--db", str(db.path), "--dir", str(backups),
                           "--file-name", f"b{i}", "--keep-amount", "2"]) == 0
    finally:
        stop.set()
        writer.join()
    assert sorted(p.name for p in backups.iterdir()) == ["b1.db", "b2.db"]

    restored = tmp_path / "restored.db"
    assert zfleet(["restore-db", str(backups / "b2.db"), "--db", str(restored)]) == 0
    conn = sqlite3.connect(restored)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    zones, clusters = (conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                       for t in ("zone", "cluster"))
    assert zones == clusters and zones > 0  # a point in time, no half transaction
    assert Database(restored).find("zone")  # opens and migrates nothing


@pytest.mark.parametrize("args, says", [
    (["--file-name", "../escape"], "--file-name"),
    (["--keep-amount", "0"], "--keep-amount"),
])
def test_bad_options_are_refused(tmp_path, capsys, args, says):
    Database(tmp_path / "zfleet.db")
    assert zfleet(["dump-db", "--db", str(tmp_path / "zfleet.db"), *args]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "backups").exists() or not list((tmp_path / "backups").iterdir())


def test_a_corrupt_backup_is_not_restored(tmp_path, capsys):
    target = tmp_path / "zfleet.db"
    Database(target).insert("zone", {"uuid": "a" * 32, "name": "keep me"})
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    assert zfleet(["restore-db", str(bad), "--db", str(target)]) == 2
    assert Database(target).get("zone", "a" * 32)["name"] == "keep me"
