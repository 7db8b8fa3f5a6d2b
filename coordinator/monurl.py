"""Ceph mon URLs of AddCephPrimaryStorage / AddCephBackupStorage / AddMonTo...:
``sshUser:sshPassword@monIp[:sshPort][/?monPort=N]``.

The password is free text: it may hold ``@``, ``:``, ``/`` or ``?``, so the host part is
what follows the *last* ``@`` (a host and ports never contain one) and the user ends at
the *first* ``:`` (a user name never contains one). Error messages never show the
password.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

DEFAULT_SSH_PORT = 22
DEFAULT_MON_PORT = 6789

_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
_HOST_PART = re.compile(r"(?P<host>[^:/?]+)(:(?P<ssh>[^/?]*))?(?P<rest>[/?].*)?")


class MonUrlError(ValueError):
    """A malformed mon URL; the message says what is wrong (never the password)."""


@dataclass(frozen=True)
class MonUrl:
    ssh_user: str
    ssh_password: str = field(repr=False)
    host: str
    ssh_port: int = DEFAULT_SSH_PORT
    mon_port: int = DEFAULT_MON_PORT

    @property
    def mon_addr(self) -> str:
        """``host:monPort``, as the agent's mon list (``mon dump``) shows a v1 address."""
        return f"{self.host}:{self.mon_port}"

    def __str__(self) -> str:
        """The URL with the password masked (safe for logs and API replies)."""
        return (f"{self.ssh_user}:***@{self.host}:{self.ssh_port}/?monPort={self.mon_port}")


def parse_mon_url(url: str) -> MonUrl:
    if not isinstance(url, str) or not url:
        raise MonUrlError("mon URL is empty: expected sshUser:sshPassword@monIp"
                          "[:sshPort][/?monPort=N]")
    if any(ord(c) < 32 or ord(c) == 127 for c in url):
        raise MonUrlError("mon URL contains control characters (newline, tab, NUL...)")
    if "@" not in url:
        raise MonUrlError("mon URL has no '@': expected sshUser:sshPassword@monIp"
                          "[:sshPort][/?monPort=N]")
    userinfo, host_part = url.rsplit("@", 1)
    user, colon, password = userinfo.partition(":")
    shown = f"{user}:***@{host_part}"
    if not colon:
        raise MonUrlError(f"mon URL {user}@{host_part}: no ':' between the ssh user and "
                          "password")
    if not _USER.fullmatch(user):
        raise MonUrlError(f"mon URL {shown}: {user!r} is not a valid ssh user name")
    if not password:
        raise MonUrlError(f"mon URL {shown}: the ssh password is empty")
    m = _HOST_PART.fullmatch(host_part)
    if not m:
        raise MonUrlError(f"mon URL {shown}: expected monIp[:sshPort][/?monPort=N] after "
                          "the '@'")
    host = _host(m["host"], shown)
    ssh_port = DEFAULT_SSH_PORT if m["ssh"] is None else _port(m["ssh"], "sshPort", shown)
    mon_port = _mon_port(m["rest"] or "", shown)
    return MonUrl(user, password, host, ssh_port, mon_port)


def _host(host: str, shown: str) -> str:
    if host.startswith("["):
        raise MonUrlError(f"mon URL {shown}: IPv6 mon addresses are not supported")
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host) or not _HOSTNAME.fullmatch(host):
        raise MonUrlError(f"mon URL {shown}: {host!r} is not an IPv4 address or host name")
    return host


def _port(value: str, name: str, shown: str) -> int:
    if not value.isdecimal() or not value.isascii() or not 0 < int(value) < 65536:
        raise MonUrlError(f"mon URL {shown}: {name} {value!r} is not a port (1-65535)")
    return int(value)


def _mon_port(rest: str, shown: str) -> int:
    """``""``, ``"/"``, ``"/?monPort=N"`` (or ``"?monPort=N"``)."""
    query = rest.removeprefix("/")
    if not query:
        return DEFAULT_MON_PORT
    if not query.startswith("?"):
        raise MonUrlError(f"mon URL {shown}: unexpected {rest!r} after the host (only "
                          "/?monPort=N may follow)")
    key, eq, value = query[1:].partition("=")
    if key != "monPort" or not eq:
        raise MonUrlError(f"mon URL {shown}: unknown option {query[1:]!r} (only monPort=N)")
    return _port(value, "monPort", shown)
