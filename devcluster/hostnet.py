"""The shared L2 segments of simulated hosts: Linux bridges in the root namespace.

Each simulated host plugs one veth per role (mgmt, data, public) into these bridges,
like physical NICs into a switch. The root namespace gets an address on the mgmt bridge
so the coordinator and the tests, which run there, reach the agents inside the hosts.

Bridges made here carry an ifalias that says they are ours and whether they are
*pinned* (made by :class:`HostNetwork`, kept until its ``down()``) or made on demand by
a host (deleted when the last host port leaves). Nothing else is ever deleted.
"""

from __future__ import annotations

import ipaddress
import json
import random
import string
from dataclasses import dataclass
from pathlib import Path

from agentlib import shell

PINNED = "zfleet-devcluster:pinned"
ON_DEMAND = "zfleet-devcluster:on-demand"
MAX_PREFIX = 4  # keeps "<prefix>br-public" and "<prefix>-<host>-<n>" within 15 chars


def link(name: str) -> dict | None:
    """The root-namespace link ``name`` as ``ip -j`` reports it, or None."""
    res = shell.run(["ip", "-j", "-d", "link", "show", "dev", name], check=False)
    if res.rc != 0:
        return None
    return json.loads(res.stdout)[0]


def links() -> list[dict]:
    return json.loads(shell.run(["ip", "-j", "link", "show"]).stdout)


def ensure_bridge(name: str, address: str | None = None, *, pinned: bool = False) -> None:
    """Create bridge ``name`` if missing and bring it up; optionally add ``address``."""
    mark = PINNED if pinned else ON_DEMAND
    found = link(name)
    if found is None:
        res = shell.run(["ip", "link", "add", "name", name, "type", "bridge"], check=False)
        if res.rc != 0 and link(name) is None:  # lost a race with another creator: fine
            raise shell.CommandFailed(res)
        shell.run(["ip", "link", "set", "dev", name, "alias", mark])
    elif pinned and found.get("ifalias") == ON_DEMAND:
        shell.run(["ip", "link", "set", "dev", name, "alias", PINNED])
    shell.run(["ip", "link", "set", "dev", name, "up"])
    if address:
        shell.run(["ip", "addr", "replace", address, "dev", name])


def bridge_ports(name: str) -> list[str]:
    return [ln["ifname"] for ln in links() if ln.get("master") == name]


def release_bridge(name: str) -> None:
    """Delete ``name`` if a host made it on demand and no port is left on it."""
    found = link(name)
    if found and found.get("ifalias") == ON_DEMAND and not bridge_ports(name):
        shell.run(["ip", "link", "del", "dev", name], check=False)


def delete_bridge(name: str) -> None:
    """Delete ``name`` if it is one of ours (pinned or on demand), ports or not."""
    found = link(name)
    if found and found.get("ifalias") in (PINNED, ON_DEMAND):
        shell.run(["ip", "link", "del", "dev", name], check=False)


@dataclass
class HostNetwork:
    """The plan of one simulated cluster's L2s: bridge names, subnet, addresses.

    ``prefix`` (at most 4 chars, e.g. "zf" for ``make up``, "zt.." for tests) keeps two
    clusters' names apart; their ``mgmt_subnet`` must differ too (one root routing table).
    """

    prefix: str
    mgmt_subnet: str = "10.99.0.0/24"
    roles: tuple[str, ...] = ("data", "public")

    def __post_init__(self):
        if not self.prefix.isalnum() or len(self.prefix) > MAX_PREFIX:
            raise ValueError(f"prefix {self.prefix!r}: 1-{MAX_PREFIX} letters/digits")
        self._net = ipaddress.ip_network(self.mgmt_subnet)

    @property
    def mgmt_bridge(self) -> str:
        return f"{self.prefix}br-mgmt"

    @property
    def bridges(self) -> dict[str, str]:
        """The extra (non-mgmt) bridges by role, as :class:`SimHost` takes them."""
        return {role: f"{self.prefix}br-{role}" for role in self.roles}

    @property
    def root_ip(self) -> str:
        """The root namespace's address on the mgmt bridge (CIDR), the subnet's first."""
        return f"{self._net[1]}/{self._net.prefixlen}"

    def host_ip(self, n: int) -> str:
        """The mgmt address (CIDR) of host number ``n`` (1-based): .11, .12, ..."""
        return f"{self._net[10 + n]}/{self._net.prefixlen}"

    def up(self) -> HostNetwork:
        ensure_bridge(self.mgmt_bridge, self.root_ip, pinned=True)
        for br in self.bridges.values():
            ensure_bridge(br, pinned=True)
        return self

    def down(self) -> None:
        """Delete the bridges; any host still plugged in loses its uplinks."""
        for br in [self.mgmt_bridge, *self.bridges.values()]:
            delete_bridge(br)


def free_prefix(start: str) -> str:
    """``start`` + 2 random chars that no root link or netns name starts with, so
    concurrent test sessions, benchmarks and ``make up`` keep their names apart."""
    taken = {ln["ifname"] for ln in links()}
    netns = Path("/run/netns")
    taken |= {p.name for p in netns.iterdir()} if netns.exists() else set()
    chars = string.ascii_lowercase + string.digits
    while True:
        prefix = start + "".join(random.choices(chars, k=2))
        if not any(name.startswith(prefix) for name in taken):
            return prefix


def free_subnet() -> str:
    """A 10.98.X.0/24 that no root-namespace address or route overlaps."""
    addrs = json.loads(shell.run(["ip", "-j", "-4", "addr", "show"]).stdout)
    routes = json.loads(shell.run(["ip", "-j", "-4", "route", "show"]).stdout)
    used = [
        ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False)
        for link in addrs
        for a in link.get("addr_info", [])
    ] + [ipaddress.ip_network(r["dst"]) for r in routes if r["dst"] != "default"]
    while True:
        candidate = ipaddress.ip_network(f"10.98.{random.randrange(256)}.0/24")
        if not any(candidate.overlaps(n) for n in used):
            return str(candidate)
