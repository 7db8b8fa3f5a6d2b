"""Constrained field types for command models.

Everything an agent later hands to a tool (a link name, a path, a MAC) is checked here,
at the edge, so a hostile value — a newline, a shell metacharacter, ``..`` — is refused
with a 400 naming the field, before any state is touched.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]*")
_LINK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_UUID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
NAME_MAX, PATH_MAX = 255, 4096
"""Linux's limits on a path component and a whole path (with its NUL), in bytes."""


def _matches(pattern: re.Pattern[str], what: str):
    def check(v: str) -> str:
        if not pattern.fullmatch(v):
            raise ValueError(f"not a valid {what}: {v!r}")
        return v

    return check


@dataclass(frozen=True)
class _Doc:
    """Adds to a type's OpenAPI schema what its validator enforces (a ``pattern``, a
    ``format``), so clients and fuzzers see the real constraint."""

    key: str
    value: str

    def __get_pydantic_json_schema__(self, core_schema, handler):
        return {**handler(core_schema), self.key: self.value}


def _pattern(regex: re.Pattern[str] | str) -> _Doc:
    return _Doc("pattern", f"^(?:{getattr(regex, 'pattern', regex)})$")


_ABS_PATH = r"(?!(?:.*/)?\.\.(?:/.*)?$)/[^\x00\n\r]*"
"""What _abs_path accepts, as a schema pattern: absolute, no ``..``, no NUL or newline."""


def _abs_path(v: str) -> str:
    if "\x00" in v or "\n" in v or "\r" in v:
        raise ValueError("path must not contain NUL or newline characters")
    p = PurePosixPath(v)
    if not p.is_absolute():
        raise ValueError(f"path must be absolute: {v!r}")
    if ".." in p.parts:
        raise ValueError(f"path must not contain '..': {v!r}")
    # the kernel's limits: beyond them every file call fails (ENAMETOOLONG)
    if len(v.encode()) >= PATH_MAX:
        raise ValueError(f"path must be shorter than {PATH_MAX} bytes")
    if any(len(part.encode()) > NAME_MAX for part in p.parts):
        raise ValueError(f"each path component must be at most {NAME_MAX} bytes")
    return str(p)


def _ipv4(v: str) -> str:
    try:
        return str(ipaddress.IPv4Address(v))
    except ValueError:
        raise ValueError(f"not a valid IPv4 address: {v!r}") from None


@functools.lru_cache(maxsize=256)  # a batch of 10,000 DHCP entries has one netmask
def _netmask(v: str) -> str:
    try:
        ipaddress.IPv4Network(f"0.0.0.0/{v}")
    except ValueError:
        raise ValueError(f"not a valid IPv4 netmask: {v!r}") from None
    return v


SafeName = Annotated[
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(_matches(_NAME, "name")),
    _pattern(_NAME),
]
"""A name that is safe as an argv element, file name and log token."""

LinkName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=15),
    AfterValidator(_matches(_LINK, "link name")),
    _pattern(_LINK),
]
"""A kernel network interface name (at most 15 characters)."""

Uuid = Annotated[str, AfterValidator(_matches(_UUID, "uuid")), _pattern(_UUID)]
MacAddress = Annotated[str, AfterValidator(_matches(_MAC, "MAC address")), _pattern(_MAC)]
AbsPath = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_abs_path),
                    _pattern(_ABS_PATH)]
IPv4 = Annotated[str, AfterValidator(_ipv4), _Doc("format", "ipv4")]
Netmask = Annotated[str, AfterValidator(_netmask),
                    _pattern(r"[0-9]{1,2}|[0-9]{1,3}(\.[0-9]{1,3}){3}")]


def _display_name(v: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError("must not contain control characters (newline, tab, NUL...)")
    return v


DisplayName = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_display_name),
    _pattern(r"[^\x00-\x1f\x7f]+"),
]
"""A human name (spaces and any script allowed), never used on a command line."""

_CEPH = re.compile(r"ceph://([A-Za-z0-9][A-Za-z0-9_.-]*)/([A-Za-z0-9][A-Za-z0-9_.-]*)"
                   r"(@[A-Za-z0-9][A-Za-z0-9_.-]*)?")


def _volume_path(v: str) -> str:
    if v.startswith("ceph://"):
        if not _CEPH.fullmatch(v):
            raise ValueError(f"not a valid ceph://<pool>/<image>[@<snap>] path: {v!r}")
        return v
    return _abs_path(v)


VolumePath = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_volume_path),
                       _pattern(f"{_CEPH.pattern}|{_ABS_PATH}")]
"""An absolute file path, or ``ceph://<pool>/<image>[@<snapshot>]``."""


SshPublicKey = Annotated[str, StringConstraints(
    max_length=16384,
    pattern=r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}"
            r"( [^\n\r\x00]*)?$")]
"""One OpenSSH public key line (``type base64 [comment]``), nothing else."""


Port = Annotated[int, Field(ge=1, le=65535)]
"""A TCP or UDP port."""

MAX_TIMEOUT = 7 * 24 * 3600
Timeout = Annotated[float, Field(gt=0, le=MAX_TIMEOUT)]
"""Seconds, positive and at most a week (finite: agentlib refuses ``1e999``)."""


def uuid_key(uuid: str) -> str:
    """A uuid as 32 lowercase hex digits, however it was spelt (dashed or not): one name,
    lock or file per resource."""
    return uuid.replace("-", "").lower()
