"""parse_console reads the test guest's serial log into leases, metadata and devices."""

from __future__ import annotations

import base64

from devcluster.guestimage import HOTPLUG, LEASE, READY, parse_console, parse_line
from devcluster.guestinit import POWER_HANDLER, scripts

USER_DATA = "#cloud-config\nhostname: a b\n"

LOG = f"""\x1bc\x1b[?7lSeaBIOS (version 1.16.2)\r
Booting from ROM..\x1bc\x1b[?7l\x1b[2JZFLEET-NIC nic=eth0 mac=52:54:00:12:34:56\r
ZFLEET-DISK disk=vda size=1073741824\r
udhcpc: sending discover\r
ZFLEET-LEASE-FAIL iface=eth0 event=leasefail\r
ZFLEET-LEASE iface=eth0 mac=52:54:00:12:34:56 ip=10.0.2.15/24 router=10.0.2.2 \
dns=10.0.2.3,10.0.2.4 lease=86400\r
ZFLEET-METADATA instance-id=vm-1\r
ZFLEET-METADATA local-hostname=my host\r
ZFLEET-METADATA user-data-base64={base64.b64encode(USER_DATA.encode()).decode()}\r
ZFLEET-METADATA-ERROR key=local-ipv4 reason=http-404\r
ZFLEET-READY\r
ZFLEET-HOTPLUG disk=vdb size=67108864\r
ZFLEET-HOTPLUG nic=eth1 mac=52:54:00:00:00:02\r
ZFLEET-LEASE iface=eth1 mac=52:54:00:00:00:02 ip=192.168.1.5/24 router= dns= lease=3600\r
ZFLEET-RESIZE disk=vda size=2147483648\r
ZFLEET-UNPLUG nic=eth1\r
ZFLEET-UNPLUG disk=vdb\r
[   12.3] random kernel line\r
ZFLEET-POWEROFF\r
[   12.4] reboot: Power down\r
"""


def test_parse_full_log():
    r = parse_console(LOG)
    assert r.ready and r.poweroff
    assert r.leases["eth0"] == {
        "iface": "eth0",
        "mac": "52:54:00:12:34:56",
        "ip": "10.0.2.15/24",
        "router": "10.0.2.2",
        "dns": "10.0.2.3,10.0.2.4",
        "lease": "86400",
    }
    assert r.ip("eth0") == "10.0.2.15"
    assert r.ip("eth1") is None  # unplugged
    assert r.metadata == {
        "instance-id": "vm-1",
        "local-hostname": "my host",
        "user-data": USER_DATA,
    }
    assert r.metadata_errors == {"local-ipv4": "http-404"}
    assert r.disks == {"vda": 2147483648}
    assert r.nics == {"eth0": "52:54:00:12:34:56"}
    tags = [tag for tag, _ in r.events]
    assert tags.index(READY) < tags.index(HOTPLUG)
    assert tags.count(LEASE) == 2


def test_partial_log_is_not_ready():
    r = parse_console("ZFLEET-NIC nic=eth0 mac=52:54:00:12:34:56\r\nZFLEET-LEA")
    assert not r.ready and not r.leases and r.nics == {"eth0": "52:54:00:12:34:56"}


def test_parse_line():
    assert parse_line("junk ZFLEET-READY\r\n") == (READY, {})
    assert parse_line("no tag here") is None
    assert parse_line("ZFLEET-METADATA user-data-base64=a=b=") == (
        "ZFLEET-METADATA",
        {"user-data-base64": "a=b="},
    )


def test_guest_scripts_use_the_line_formats():
    """Every placeholder in the guest scripts was filled in with a ZFLEET tag or path."""
    init = scripts()["/init"]
    assert "@" not in init.replace("$@", "")
    assert '"ZFLEET-READY"' in init
    assert scripts()[POWER_HANDLER].count("ZFLEET-POWEROFF") == 1
