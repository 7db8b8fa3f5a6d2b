"""Online database backups (ZStack 1.2's ``dump_mysql --file-name --keep-amount``): a
consistent copy of the live sqlite file through sqlite's backup API while the
coordinator keeps writing, older backups beyond a count removed; and restore.

A cron line on the management node::

    30 0,12 * * *  zfleet dump-db --keep-amount 14
"""

from __future__ import annotations

import datetime
import re
import sqlite3
from pathlib import Path

DEFAULT_DB = Path("/var/lib/zfleet/coordinator/zfleet.db")
BACKUP_SUFFIX = ".db"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class BackupError(ValueError):
    pass


def dump(db_path: Path, backup_dir: Path, file_name: str | None = None,
         keep: int | None = None) -> tuple[Path, list[Path]]:
    """(the backup made, the old backups removed to keep ``keep``)."""
    if not Path(db_path).exists():
        raise BackupError(f"no database at {db_path} (--db)")
    name = file_name or f"zfleet-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    if not _NAME.match(name):
        raise BackupError(f"--file-name: letters, digits, '.', '_' and '-' only: {name!r}")
    if keep is not None and keep < 1:
        raise BackupError(f"--keep-amount: at least 1, not {keep}")
    backup_dir.mkdir(parents=True, exist_ok=True)
    target = backup_dir / (name if name.endswith(BACKUP_SUFFIX) else name + BACKUP_SUFFIX)
    tmp = target.with_name(f".{target.name}.part")
    tmp.unlink(missing_ok=True)
    _copy(db_path, tmp)
    tmp.replace(target)
    removed = []
    if keep is not None:
        backups = sorted((p for p in backup_dir.glob(f"*{BACKUP_SUFFIX}") if p.is_file()),
                         key=lambda p: p.stat().st_mtime)
        for old in backups[:-keep]:
            if old != target:
                old.unlink()
                removed.append(old)
    return target, removed


def restore(backup: Path, db_path: Path) -> None:
    """Replace the database with ``backup`` (the coordinator must be stopped)."""
    if not Path(backup).exists():
        raise BackupError(f"no backup at {backup}")
    check = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        verdict = str(exc)
    finally:
        check.close()
    if verdict != "ok":
        raise BackupError(f"{backup} is not a sound sqlite database ({verdict}): not "
                          "restored")
    _copy(backup, db_path)


def _copy(src: Path, dst: Path) -> None:
    """sqlite's online backup: a consistent snapshot, whatever writers do meanwhile."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
