"""What the test guest prints on its serial console, and a parser for that log.

Every report is one line ``<TAG> key=value key=value ...`` (values never contain
spaces), except ``METADATA`` whose single ``key=value`` runs to the end of the line.
The guest's /init (devcluster.guestinit) prints these; tests and agents read them back
with :func:`parse_console` instead of grepping ad hoc.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

LEASE = "ZFLEET-LEASE"  # iface= mac= ip=ADDR/PREFIX router= dns= lease= (lists comma-joined)
LEASE_FAIL = "ZFLEET-LEASE-FAIL"  # iface= event=leasefail|nak (udhcpc keeps retrying)
DISK = "ZFLEET-DISK"  # disk=vda size=BYTES (present at boot)
NIC = "ZFLEET-NIC"  # nic=eth0 mac= (present at boot)
METADATA = "ZFLEET-METADATA"  # instance-id=.. | local-hostname=.. | local-ipv4=.. |
#                               user-data-base64=.. (one key per line)
METADATA_ERROR = "ZFLEET-METADATA-ERROR"  # key= reason=unreachable|http-<status>
READY = "ZFLEET-READY"  # boot done: leases tried, metadata fetched, watching devices
HOTPLUG = "ZFLEET-HOTPLUG"  # disk=vdb size=BYTES | nic=eth1 mac=..
UNPLUG = "ZFLEET-UNPLUG"  # disk=vdb | nic=eth1
RESIZE = "ZFLEET-RESIZE"  # disk=vda size=BYTES
POWEROFF = "ZFLEET-POWEROFF"  # ACPI power button pressed; powering off now

USER_DATA_B64 = "user-data-base64"

_LINE = re.compile(r"(ZFLEET-[A-Z]+(?:-[A-Z]+)*)(?: (.*))?$")


@dataclass
class ConsoleReport:
    """The guest's state as reported so far; device maps replay hotplug/unplug in order."""

    events: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    leases: dict[str, dict[str, str]] = field(default_factory=dict)  # iface -> last lease
    metadata: dict[str, str] = field(default_factory=dict)  # user-data decoded
    metadata_errors: dict[str, str] = field(default_factory=dict)  # key -> reason
    disks: dict[str, int] = field(default_factory=dict)  # name -> size in bytes
    nics: dict[str, str] = field(default_factory=dict)  # name -> mac
    ready: bool = False
    poweroff: bool = False

    def ip(self, iface: str = "eth0") -> str | None:
        """The leased address of ``iface`` without its prefix length, if any."""
        lease = self.leases.get(iface)
        return lease["ip"].split("/")[0] if lease else None


def parse_line(line: str) -> tuple[str, dict[str, str]] | None:
    """(tag, fields) of a ZFLEET line; tolerates junk before the tag and a trailing CR."""
    m = _LINE.search(line.rstrip("\r\n"))
    if not m:
        return None
    tag, rest = m.group(1), m.group(2) or ""
    if tag == METADATA:
        key, _, value = rest.partition("=")
        return tag, {key: value}
    return tag, dict(kv.partition("=")[::2] for kv in rest.split() if "=" in kv)


def parse_console(text: str) -> ConsoleReport:
    """Read a serial log (complete or still growing) into a :class:`ConsoleReport`."""
    report = ConsoleReport()
    for line in text.splitlines():
        parsed = parse_line(line)
        if parsed:
            report.events.append(parsed)
            _apply(report, *parsed)
    return report


def _apply(r: ConsoleReport, tag: str, f: dict[str, str]) -> None:
    if tag == LEASE:
        r.leases[f.get("iface", "")] = f
    elif tag == METADATA:
        for key, value in f.items():
            if key == USER_DATA_B64:
                r.metadata["user-data"] = base64.b64decode(value).decode(errors="replace")
            else:
                r.metadata[key] = value
    elif tag == METADATA_ERROR:
        r.metadata_errors[f.get("key", "")] = f.get("reason", "")
    elif tag in (DISK, HOTPLUG, RESIZE) and "disk" in f:
        r.disks[f["disk"]] = int(f.get("size", "0"))
    elif tag in (NIC, HOTPLUG) and "nic" in f:
        r.nics[f["nic"]] = f.get("mac", "")
    elif tag == UNPLUG:
        r.disks.pop(f.get("disk", ""), None)
        r.nics.pop(f.get("nic", ""), None)
        r.leases.pop(f.get("nic", ""), None)
    elif tag == READY:
        r.ready = True
    elif tag == POWEROFF:
        r.poweroff = True
