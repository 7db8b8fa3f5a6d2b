"""Global configs (UpdateGlobalConfig / QueryGlobalConfig), named as in ZStack.

Every config has a category, a name, a default and a check; the database holds the
current value, so a change survives a restart. Sizes accept ZStack's suffixes
(``512M``, ``1G``) and durations ``30s``, ``10m``, ``3h``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from coordinator.db import Database, now

_SIZE = re.compile(r"^(\d+)([KMGT]?)B?$", re.I)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")


def parse_size(value: str) -> int:
    m = _SIZE.match(value.strip())
    if not m:
        raise ValueError(f"not a size (e.g. 512M, 2G): {value!r}")
    return int(m.group(1)) << (10 * " KMGT".index(m.group(2).upper() or " "))


def parse_duration(value: str) -> float:
    m = _DURATION.match(value.strip())
    if not m:
        raise ValueError(f"not a duration (e.g. 30s, 10m, 3h): {value!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _choice(*allowed: str) -> Callable[[str], object]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}: {value!r}")
        return value
    return check


def _number(kind: type, minimum: float,
            maximum: float | None = None) -> Callable[[str], object]:
    def check(value: str) -> object:
        try:
            n = kind(value)
        except ValueError:
            raise ValueError(f"not a{'n integer' if kind is int else ' number'}: "
                             f"{value!r}") from None
        if n < minimum:
            raise ValueError(f"must be at least {minimum}: {value!r}")
        if maximum is not None and n > maximum:
            raise ValueError(f"must be at most {maximum}: {value!r}")
        return n
    return check


def _bool(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError(f"must be true or false: {value!r}")
    return value.lower() == "true"


@dataclass(frozen=True)
class ConfigDef:
    category: str
    name: str
    default: str
    parse: Callable[[str], object]
    description: str


_DELETION = _choice("Direct", "Delay", "Never")
DEFINITIONS: list[ConfigDef] = [
    ConfigDef("kvm", "vm.cpuMode", "none", _choice("none", "host-model", "host-passthrough"),
              "CPU model given to VMs (host-passthrough allows nested virtualisation)"),
    ConfigDef("kvm", "vm.cacheMode", "none", _choice("none", "writethrough", "writeback"),
              "disk cache mode of VM volumes"),
    ConfigDef("kvm", "vm.consoleMode", "vnc", _choice("vnc", "spice"), "VM console protocol"),
    ConfigDef("kvm", "reservedMemory", "512M", parse_size,
              "memory each host keeps for itself, never given to VMs"),
    ConfigDef("host", "cpu.overProvisioning.ratio", "10", _number(float, 0.1),
              "virtual CPUs allocatable per host CPU"),
    ConfigDef("mevoco", "overProvisioning.memory", "1.0", _number(float, 0.1),
              "memory allocatable per byte of host memory"),
    ConfigDef("host", "ping.interval", "10", _number(float, 0.1),
              "seconds between pings of each host's agent"),
    ConfigDef("host", "ping.maxFailure", "3", _number(int, 1),
              "missed pings before a host is Disconnected"),
    ConfigDef("host", "allocator.strategy", "LeastVmPreferredHostAllocatorStrategy",
              _choice("LeastVmPreferredHostAllocatorStrategy", "DefaultHostAllocatorStrategy",
                      "MostMemoryHostAllocatorStrategy"),
              "how CreateVmInstance picks a host when the offering does not say"),
    ConfigDef("ha", "enable", "true", _bool, "restart NeverStop VMs of lost hosts elsewhere "
              "(false: hosts' self-fencers are cancelled, for planned whole-cluster work)"),
    # bounded so that a peer's scan window (interval x (maxAttempts + 2) + 20 s) stays
    # within the 600 s kvmagent's /ha/scanhost accepts (30 x 19 + 20 = 590)
    ConfigDef("ha", "host.selfFencer.interval", "5", _number(float, 0.1, 30),
              "seconds between a host's heartbeats in its Ceph storage"),
    ConfigDef("ha", "host.selfFencer.maxAttempts", "6", _number(int, 1, 17),
              "intervals without storage and coordinator before a host destroys its VMs"),
    ConfigDef("gc", "interval", "60", _number(float, 1),
              "seconds between rounds of pending garbage collection jobs (besides the "
              "round each host's reconnection triggers)"),
    *(ConfigDef(cat, "deletionPolicy", "Delay", _DELETION, f"how a deleted {cat} goes")
      for cat in ("vm", "volume", "image")),
    *(ConfigDef(cat, "expungePeriod", "86400", _number(int, 0),
                f"seconds a Delay-deleted {cat} is kept before it is expunged")
      for cat in ("vm", "volume", "image")),
    *(ConfigDef(cat, "expungeInterval", "3600", _number(int, 1),
                f"seconds between scans for {cat}s to expunge")
      for cat in ("vm", "volume", "image")),
]


class GlobalConfig:
    def __init__(self, db: Database, long_apis: dict[str, str] | None = None):
        """``long_apis``: API name -> default timeout (ZStack 1.1: 3h for long APIs); each
        becomes the config ``apiTimeout/<ApiName>``."""
        self.db = db
        self.defs = {(d.category, d.name): d for d in DEFINITIONS}
        for api, default in (long_apis or {}).items():
            self.defs[("apiTimeout", api)] = ConfigDef(
                "apiTimeout", api, default, parse_duration, f"how long {api} may take")
        with db.tx() as tx:
            for d in self.defs.values():
                tx.execute("INSERT OR IGNORE INTO global_config (category, name, value, "
                           "default_value, description, created, updated) VALUES "
                           "(?, ?, ?, ?, ?, ?, ?)",
                           (d.category, d.name, d.default, d.default, d.description, now(),
                            now()))
                tx.execute("UPDATE global_config SET default_value = ?, description = ? "
                           "WHERE category = ? AND name = ?",
                           (d.default, d.description, d.category, d.name))

    def get(self, category: str, name: str) -> object:
        d = self._def(category, name)
        row = self.db.conn().execute("SELECT value FROM global_config WHERE category = ? "
                                     "AND name = ?", (category, name)).fetchone()
        return d.parse(row[0] if row else d.default)

    def update(self, category: str, name: str, value: str) -> dict:
        d = self._def(category, name)
        try:
            d.parse(value)
        except ValueError as exc:
            raise ValueError(f"value: {category}/{name} {exc}") from None
        self.db.update_where("global_config", "category = ? AND name = ?", (category, name),
                             value=value)
        return self.row(category, name)

    def row(self, category: str, name: str) -> dict:
        [row] = self.db.find("global_config", "category = ? AND name = ?", (category, name))
        return row

    def _def(self, category: str, name: str) -> ConfigDef:
        d = self.defs.get((category, name))
        if d is None:
            known = sorted(n for c, n in self.defs if c == category)
            hint = f"; {category} has: {', '.join(known)}" if known else \
                f"; categories: {', '.join(sorted({c for c, _ in self.defs}))}"
            raise KeyError(f"no global config {category}/{name}{hint}")
        return d
