"""URLs an agent POSTs to (``callbackurl``, ``sendCommandUrl``): checked when given.

A reply or report to an undeliverable URL (``abc``, port 99999) is lost silently; one
aimed at the agent's own API runs a command nobody sent (a ``/vm/destroy`` reply posted
to ``/flatnetworkprovider/dhcp/connect`` wiped every DHCP entry). So a URL must be http(s)
with a valid host and port, and must not reach the agent itself: its listening
address and port, any local address when it listens on all of them, or any loopback
address on its port.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Annotated, NamedTuple
from urllib.parse import urlsplit

import psutil
from pydantic import AfterValidator, StringConstraints, ValidationInfo

_HOSTNAME = re.compile(r"(?=.{1,253}\.?$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
_DEFAULT_PORTS = {"http": 80, "https": 443}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Listen(NamedTuple):
    """Where the agent listens (host ``0.0.0.0``/``::``: every local address)."""

    host: str
    port: int


def check(url: str, listen: Listen | None) -> str:
    """``url`` if it is a deliverable http(s) URL that does not reach ``listen``, else
    ValueError saying why."""
    if not url or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError(f"not an http(s) URL: {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a broken [IPv6] host, "x" or 99999
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc}): {url!r}") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL with a host: {url!r}")
    host = parts.hostname
    ip = _ip(host)
    if ip is None and not _HOSTNAME.fullmatch(host):
        raise ValueError(f"not a valid host name or IP address {host!r}: {url!r}")
    if port is None:
        port = _DEFAULT_PORTS[parts.scheme]
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be 1..65535: {url!r}")
    if listen is not None and listen.port == port and _reaches(host, ip, listen):
        raise ValueError(f"must not point at the agent itself ({listen.host}:{port}): {url!r}")
    return url


def _ip(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _reaches(host: str, ip: Address | None, listen: Listen) -> bool:
    """Would a connection to ``host`` on the agent's port reach the agent?"""
    if ip is not None:
        targets = [ip]
    else:
        try:
            infos = socket.getaddrinfo(host, listen.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ValueError(f"cannot resolve {host!r} ({exc})") from None
        targets = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    own = _ip(listen.host)
    everywhere = own is None or own.is_unspecified
    local = _local_addresses() if everywhere else {own}
    for target in targets:
        if isinstance(target, ipaddress.IPv6Address) and target.ipv4_mapped:
            target = target.ipv4_mapped
        if target.is_loopback or target.is_unspecified or target in local:
            return True
    return False


def _local_addresses() -> set[Address]:
    """Every address of this network namespace's interfaces."""
    found: set[Address] = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                ip = _ip(a.address.split("%")[0])
                if ip is not None:
                    found.add(ip)
    return found


def _validate(v: str, info: ValidationInfo) -> str:
    listen = (info.context or {}).get("listen")
    return check(v, listen)


CallbackUrl = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_validate)]
"""An http(s) URL the agent will POST to; the agent's own address is refused when the
command is validated with ``context={"listen": Listen(...)}`` (the framework does)."""
