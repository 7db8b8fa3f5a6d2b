"""Typed records of the tables the services touch most, each table group's SQL in one
module (:mod:`.hosts`, :mod:`.vms`, :mod:`.volumes`, :mod:`.networks`, :mod:`.images`),
on :class:`coordinator.db.Database`. A record is a frozen dataclass: ``vm.host_uuid``,
not ``vm["host_uuid"]``, and a misspelled column is an error where it is written."""
