"""Constrained field types for command models.

Everything an agent later hands to a tool (a link name, a path, a MAC) is checked here,
at the edge, so a hostile value — a newline, a shell metacharacter, ``..`` — is refused
with a 400 naming the field, before any state is touched.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]*")
_LINK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_UUID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


def _matches(pattern: re.Pattern[str], what: str):
    def check(v: str) -> str:
        if not pattern.fullmatch(v):
            raise ValueError(f"not a valid {what}: {v!r}")
        return v

    return check


def _abs_path(v: str) -> str:
    if "\x00" in v or "\n" in v or "\r" in v:
        raise ValueError("path must not contain NUL or newline characters")
    p = PurePosixPath(v)
    if not p.is_absolute():
        raise ValueError(f"path must be absolute: {v!r}")
    if ".." in p.parts:
        raise ValueError(f"path must not contain '..': {v!r}")
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
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(_matches(_NAME, "name"))
]
"""A name that is safe as an argv element, file name and log token."""

LinkName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=15),
    AfterValidator(_matches(_LINK, "link name")),
]
"""A kernel network interface name (at most 15 characters)."""

Uuid = Annotated[str, AfterValidator(_matches(_UUID, "uuid"))]
MacAddress = Annotated[str, AfterValidator(_matches(_MAC, "MAC address"))]
AbsPath = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_abs_path)]
IPv4 = Annotated[str, AfterValidator(_ipv4)]
Netmask = Annotated[str, AfterValidator(_netmask)]


def _display_name(v: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError("must not contain control characters (newline, tab, NUL...)")
    return v


DisplayName = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_display_name)
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


VolumePath = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_volume_path)]
"""An absolute file path, or ``ceph://<pool>/<image>[@<snapshot>]``."""


SshPublicKey = Annotated[str, StringConstraints(
    max_length=16384,
    pattern=r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}"
            r"( [^\n\r\x00]*)?$")]
"""One OpenSSH public key line (``type base64 [comment]``), nothing else."""


def uuid_key(uuid: str) -> str:
    """A uuid as 32 lowercase hex digits, however it was spelt (dashed or not): one name,
    lock or file per resource."""
    return uuid.replace("-", "").lower()
