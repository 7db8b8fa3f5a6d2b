"""Which clusters a primary storage serves (``ps_cluster``) and which zones a backup
storage serves (``bs_zone``)."""

from __future__ import annotations

from coordinator.db import Database


class PsClusters:
    def __init__(self, db: Database):
        self.db = db

    def attach(self, ps_uuid: str, cluster_uuid: str) -> None:
        """Attach (once: attached already is fine)."""
        with self.db.tx():
            self.db.conn().execute("INSERT OR IGNORE INTO ps_cluster VALUES (?, ?)",
                                   (ps_uuid, cluster_uuid))

    def detach(self, ps_uuid: str, cluster_uuid: str) -> None:
        with self.db.tx():
            self.db.conn().execute("DELETE FROM ps_cluster WHERE ps_uuid = ? AND "
                                   "cluster_uuid = ?", (ps_uuid, cluster_uuid))


class BsZones:
    def __init__(self, db: Database):
        self.db = db

    def attach(self, bs_uuid: str, zone_uuid: str) -> None:
        """Attach (once: attached already is fine)."""
        with self.db.tx():
            self.db.conn().execute("INSERT OR IGNORE INTO bs_zone VALUES (?, ?)",
                                   (bs_uuid, zone_uuid))
