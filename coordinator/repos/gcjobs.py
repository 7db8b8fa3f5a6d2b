"""The garbage collector's kept commands (``gc_job``)."""

from __future__ import annotations

from coordinator.db import Database


class GcJobs:
    def __init__(self, db: Database):
        self.db = db

    def hosts_with_pending(self) -> list[str]:
        """The hosts (uuids, sorted) that have Pending jobs."""
        return [r[0] for r in self.db.conn().execute(
            "SELECT DISTINCT host_uuid FROM gc_job WHERE status = 'Pending' AND "
            "host_uuid != '' ORDER BY host_uuid")]
