"""Which clusters a primary storage serves (``ps_cluster``) and which zones a backup
storage serves (``bs_zone``)."""

from __future__ import annotations

from coordinator.repos.record import Links


class PsClusters(Links):
    table, left, right = "ps_cluster", "ps_uuid", "cluster_uuid"


class BsZones(Links):
    table, left, right = "bs_zone", "bs_uuid", "zone_uuid"
